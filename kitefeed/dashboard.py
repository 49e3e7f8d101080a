"""A terminal view of a running feed: per key and connection state, rates and losses."""

from __future__ import annotations

import time

from rich.table import Table

from .engine import FeedStats

__all__ = ["Dashboard"]


class Dashboard:
    """Builds a table from successive ``Feed.stats()`` records, with rates since the previous one.

    The first table shows no rate ("-"), because there is nothing to compare with yet.
    """

    def __init__(self, title: str, *, show_elapsed: bool = True) -> None:
        self.title = title
        self._show_elapsed = show_elapsed
        self._previous: FeedStats | None = None
        self._previous_time = 0.0
        self._started = time.monotonic()

    def table(self, stats: FeedStats) -> Table:
        """Return the table for ``stats``; ticks/s compares it with the previous call's."""
        now = time.monotonic()
        elapsed = now - self._previous_time if self._previous is not None else 0.0
        previous = {
            (key.api_key, connection.connection): connection.ticks
            for key in (self._previous.keys if self._previous is not None else [])
            for connection in key.connections
        }

        title = f"{self.title}, {now - self._started:5.1f} s" if self._show_elapsed else self.title
        table = Table(title=title, title_justify="left")
        for column in ("key", "conn", "state", "instruments", "ticks/s", "ticks", "reconnects", "errors", "lost"):
            table.add_column(column, justify="left" if column in ("key", "state") else "right")
        for key in stats.keys:
            active = [connection for connection in key.connections if connection.instruments or connection.connects]
            for number, connection in enumerate(active or key.connections[:1]):
                before = previous.get((key.api_key, connection.connection))
                rate = (connection.ticks - before) / elapsed if before is not None and elapsed > 0 else None
                table.add_row(
                    key.api_key if number == 0 else "",
                    str(connection.connection),
                    connection.state if key.state == "running" else f"{connection.state} ({key.state})",
                    f"{connection.instruments:,}",
                    "-" if rate is None else f"{rate:,.0f}",
                    f"{connection.ticks:,}",
                    f"{max(0, connection.connects - 1):,}",
                    f"{connection.parse_errors:,}",
                    f"{key.records_lost:,}" if number == 0 else "",
                )

        self._previous = stats
        self._previous_time = now
        return table
