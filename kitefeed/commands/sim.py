"""`kitefeed sim`: run the Kite ticker simulator until Ctrl-C or for a set time."""

from __future__ import annotations

import threading

import click

from ..errors import KitefeedError
from ..sim import DEMO_CREDENTIALS, Simulator, load_replay


def _parse_key(value: str) -> tuple[str, str]:
    api_key, separator, token = value.partition(":")
    if not separator or not api_key or not token:
        # The value contains a token, so the message does not repeat it.
        raise click.BadParameter("expected KEY:TOKEN with a non-empty key and token", param_hint="'--key'")
    return api_key, token


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="TCP port; 0 picks a free one.")
@click.option(
    "--host",
    type=click.Choice(["127.0.0.1", "::1"]),
    default="127.0.0.1",
    show_default=True,
    help="Loopback address to listen on.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY:TOKEN",
    help="API key and access token to accept (repeatable). Default: one demo pair.",
)
@click.option(
    "--tick-interval",
    type=click.FloatRange(min=0.001),
    default=0.1,
    show_default=True,
    help="Seconds between push cycles.",
)
@click.option(
    "--replay",
    "replay_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Binary message to send on every connection in a loop, one per cycle (repeatable): "
    "a .bin raw message or a .packet base64 packet.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the random walk.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Stop after this many seconds instead of waiting for Ctrl-C.",
)
def sim(
    port: int,
    host: str,
    keys: tuple[str, ...],
    tick_interval: float,
    replay_files: tuple[str, ...],
    seed: int,
    seconds: float | None,
) -> None:
    """Run a Kite ticker WebSocket simulator on the loopback interface.

    Prints the URL and the accepted API keys (never the tokens), then serves until
    Ctrl-C or until --seconds have passed.
    """
    credentials = dict(_parse_key(value) for value in keys) if keys else dict(DEMO_CREDENTIALS)
    try:
        replay = load_replay(replay_files)
        simulator = Simulator(credentials, host=host, port=port, tick_interval=tick_interval, seed=seed, replay=replay)
        simulator.start()
    except (KitefeedError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc

    try:
        click.echo(f"url: {simulator.url}", nl=True)
        click.echo(f"api keys: {', '.join(sorted(credentials))}")
        if replay:
            click.echo(f"replaying {len(replay)} messages")
        threading.Event().wait(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        stats = simulator.stats()
        simulator.stop()
    refused = ", ".join(f"{status}: {count}" for status, count in sorted(stats.refused.items())) or "none"
    click.echo(f"served {stats.connections_total} connections, {stats.packets_sent} packets; refused {refused}")
