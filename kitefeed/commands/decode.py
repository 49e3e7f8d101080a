"""`kitefeed decode`: print the ticks of one captured binary message as JSON."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from ..parsers.decoder import Decoder
from ..parsers.kiteconnect_format import to_kiteconnect, to_records

__all__ = ["decode"]


def _read_message(path: Path, is_hex: bool) -> bytes:
    """Read the message bytes from ``path``, raising a usage error that names the file."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise click.BadParameter(
            f"file {str(path)!r} not found; pass the path of a captured message", param_hint="FILE"
        ) from None
    except IsADirectoryError:
        raise click.BadParameter(f"{str(path)!r} is a directory; pass the path of a file", param_hint="FILE") from None
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {str(path)!r}: {error.strerror}; check the path and its permissions", param_hint="FILE"
        ) from None
    if not is_hex:
        return content

    try:
        return bytes.fromhex(content.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as error:
        raise click.BadParameter(
            f"{str(path)!r} is not valid hex text ({error}); pass pairs of hex digits, "
            "or omit --hex if the file holds raw bytes",
            param_hint="FILE",
        ) from None


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--hex", "is_hex", is_flag=True, help="FILE contains the message as hex digits; whitespace is ignored.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["kitefeed", "kiteconnect"]),
    default="kitefeed",
    show_default=True,
    help="kitefeed: every tick field, times in UTC. kiteconnect: the official client's on_ticks list, times in +05:30.",
)
def decode(file: Path, is_hex: bool, output_format: str) -> None:
    """Print the ticks of one Kite binary message in FILE as JSON.

    FILE contains one WebSocket binary message as received (packet count, then length-prefixed
    packets). Skipped packets are counted on standard error.
    """
    message = _read_message(file, is_hex)
    decoder = Decoder()
    ticks = decoder.decode(message)

    if output_format == "kiteconnect":
        # orjson writes the aware datetimes as ISO 8601 with +05:30 and None as null.
        document = to_kiteconnect(ticks)
    else:
        document = to_records(ticks)
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())

    stats = decoder.stats()
    if stats.errors:
        click.echo(
            f"skipped packets: {stats.short_packets} short, {stats.truncated_packets} truncated, "
            f"{stats.unknown_length_packets} of unknown length, {stats.missing_packets} missing",
            err=True,
        )
    if stats.errors and not len(ticks):
        raise click.ClickException(
            f"invalid message in {file}: every packet was damaged or missing; "
            "pass the raw bytes of one WebSocket binary message (or --hex for hex text)"
        )
