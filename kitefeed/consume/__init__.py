"""Ways to consume a feed's ticks beyond iterating a reader.

* :func:`on_ticks` and :func:`on_ticks_async`: a callback per batch, from a thread or
  an asyncio task, with callback errors counted instead of raised.
* :class:`KiteTickerAdapter` and :func:`iter_kiteconnect`: ticks as the official
  ``kiteconnect.KiteTicker`` client delivers them, for code written for that client.
* :func:`to_pandas`, :func:`to_polars` and :func:`to_arrow`: a batch as a DataFrame or
  an Arrow table (optional extra ``kitefeed[dataframes]``).
* :class:`LatestTable`: the newest record of every instrument in shared memory, which
  any process can query by the feed's name.
"""

from .callbacks import AsyncConsumer, Consumer, ConsumerStats, on_ticks, on_ticks_async
from .frames import COLUMNS, to_arrow, to_columns, to_pandas, to_polars
from .kiteconnect import KiteTickerAdapter, iter_kiteconnect
from .latest import LatestStats, LatestTable, remove_stale_tables, table_name

__all__ = [
    "AsyncConsumer",
    "COLUMNS",
    "Consumer",
    "ConsumerStats",
    "KiteTickerAdapter",
    "LatestStats",
    "LatestTable",
    "iter_kiteconnect",
    "on_ticks",
    "on_ticks_async",
    "remove_stale_tables",
    "table_name",
    "to_arrow",
    "to_columns",
    "to_pandas",
    "to_polars",
]
