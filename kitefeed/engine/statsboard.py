"""A feed's latest statistics in shared memory, for ``kitefeed stats`` in another process.

The board is a small ring of two records, each holding one JSON-encoded
:class:`FeedStats`. The feed publishes a record once a second; a reader takes the
newest record and checks that it was not overwritten while it copied it. Being a
ring, the board is removed with the feed's other segments, and ``kitefeed cleanup``
recognises a board left by a killed feed.
"""

from __future__ import annotations

import msgspec
import numpy as np

from ..errors import RingError
from ..ringbuf import Ring
from .naming import SEGMENT_PREFIX
from .stats import FeedStats

__all__ = ["BOARD_DTYPE", "StatsBoard", "board_name", "read_board"]

_JSON_BYTES = 65_528
BOARD_DTYPE = np.dtype([("length", "<u4"), ("json", "u1", (_JSON_BYTES,))])
"""One record: the length of the JSON text, then the text."""

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(FeedStats)


def board_name(feed: str) -> str:
    """Return the segment name of a feed's statistics board, e.g. ``kitefeed-demo-stats``."""
    return f"{SEGMENT_PREFIX}{feed}-stats"


class StatsBoard:
    """The writing side, owned by the feed."""

    def __init__(self, feed: str) -> None:
        self._ring = Ring.create(board_name(feed), BOARD_DTYPE, 2)
        self._writer = self._ring.writer()
        self._record = np.zeros(1, dtype=BOARD_DTYPE)

    def publish(self, stats: FeedStats) -> bool:
        """Publish ``stats``; return False (publishing nothing) if its JSON is too long for a record."""
        text = _encoder.encode(stats)
        if len(text) > _JSON_BYTES:
            return False
        self._record["length"] = len(text)
        self._record["json"][0, : len(text)] = np.frombuffer(text, dtype=np.uint8)
        self._writer.publish(self._record)
        return True

    def close(self) -> None:
        """Remove the board; readers that have it open keep their mapping."""
        self._writer.close()
        self._ring.mark_closed()
        self._ring.close()
        self._ring.unlink()


def read_board(feed: str) -> FeedStats | None:
    """Return the newest statistics the feed ``feed`` published, or None if it has published none yet.

    Raises :class:`RingError` when the feed has no board (it is not running).
    """
    with Ring.attach(board_name(feed)) as ring, ring.reader() as reader:
        newest = None
        while len(batch := reader.read_nowait()):
            record = batch[-1:].copy()
            # Checked before the next read, which moves the reader's notion of "last batch".
            if reader.intact():
                newest = record
        if newest is None:
            if reader.stats().published:
                raise RingError(f"statistics board of feed {feed!r} changed during the read; try again")
            return None
        length = int(newest["length"][0])
        return _decoder.decode(newest["json"][0, :length].tobytes())
