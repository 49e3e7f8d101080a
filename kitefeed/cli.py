"""The ``kitefeed`` command line: ``run``, ``demo``, ``sim``, ``decode``, ``cleanup`` and more.

Each command lives in its own module under :mod:`kitefeed.commands`. Logging is
configured here and nowhere else in the package.
"""

from __future__ import annotations

import logging

import click

from .commands.cleanup import cleanup
from .commands.decode import decode
from .commands.demo import demo
from .commands.record import record
from .commands.replay import replay
from .commands.run import run
from .commands.sim import sim
from .commands.stats import stats
from .commands.tail import tail

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
    help="Minimum level of log messages written to standard error.",
)
@click.version_option(package_name="kitefeed")
def main(log_level: str) -> None:
    """Stream Kite Connect ticks from many API keys into shared memory."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(demo)
main.add_command(sim)
main.add_command(decode)
main.add_command(cleanup)
main.add_command(record)
main.add_command(replay)
main.add_command(run)
main.add_command(tail)
main.add_command(stats)
