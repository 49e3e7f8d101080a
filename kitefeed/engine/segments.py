"""The shared-memory segments of a feed: claiming its name, creating one key's ring.

A live feed and a replay create the same segments, so that a reader cannot tell them
apart: one ring per key with TICK_DTYPE records, and one doorbell for all rings.
"""

from __future__ import annotations

import json
import logging

from ..errors import FeedStateError
from ..parsers import TICK_DTYPE
from ..ringbuf import Ring, list_segments, remove_stale_segments
from .naming import SEGMENT_PREFIX, ring_name

__all__ = ["claim_feed_name", "create_key_ring"]

logger = logging.getLogger(__name__)


def claim_feed_name(name: str, what: str = "feed") -> None:
    """Remove segments that a dead feed of this name left; raise if a live one still uses the name.

    Raises :class:`FeedStateError` naming the feed when segments of a running feed or
    replay remain. ``what`` names the caller in the log ("feed" or "replay").
    """
    prefix = f"{SEGMENT_PREFIX}{name}-"
    removed = remove_stale_segments(prefix)
    if removed:
        logger.warning("%s %r: removed %d segments left by a process that died: %s", what, name, len(removed), removed)
    if list_segments(prefix):
        raise FeedStateError(
            f"a running feed or replay named {name!r} already has shared memory on this machine; "
            "choose another name, or stop it first"
        )


def create_key_ring(feed: str, key_index: int, api_key: str, capacity: int, doorbell: str) -> Ring:
    """Create the ring of one key, with the user area that readers read the api_key from."""
    user = json.dumps({"feed": feed, "key_index": key_index, "api_key": api_key}).encode()
    return Ring.create(ring_name(feed, key_index), TICK_DTYPE, capacity, user=user, doorbell=doorbell)
