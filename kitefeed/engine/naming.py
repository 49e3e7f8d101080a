"""Names of a feed's shared-memory segments."""

from __future__ import annotations

import os
import re
import secrets

from ..errors import InvalidRequestError

__all__ = ["SEGMENT_PREFIX", "default_feed_name", "doorbell_name", "ring_name", "validate_feed_name"]

SEGMENT_PREFIX = "kitefeed-"
_FEED_NAME = re.compile(r"[A-Za-z0-9_.]{1,48}")


def validate_feed_name(name: str) -> str:
    if not isinstance(name, str) or not _FEED_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"invalid feed name {name!r}: expected 1 to 48 letters, digits, '_' or '.'"
        )
    return name


def default_feed_name() -> str:
    """Return a name unique on this machine: the process id and a random suffix."""
    return f"{os.getpid()}.{secrets.token_hex(3)}"


def ring_name(feed: str, key_index: int) -> str:
    """Return the segment name of one key's ring, e.g. ``kitefeed-demo-0``."""
    return f"{SEGMENT_PREFIX}{feed}-{key_index}"


def doorbell_name(feed: str) -> str:
    """Return the segment name of the doorbell that all rings of a feed share, e.g. ``kitefeed-demo-bell``."""
    return f"{SEGMENT_PREFIX}{feed}-bell"
