"""`kitefeed sim`."""

from __future__ import annotations

import click


@click.command()
def sim() -> None:
    """Not built yet."""
    raise click.ClickException("kitefeed sim is not built yet")
