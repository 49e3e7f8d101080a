"""kitefeed's kiteconnect view against the official client's own parser on random valid messages.

The official parser is ``KiteTicker._parse_binary`` from kiteconnect 5.2.2. It only uses
``self`` for class constants and two helper methods, so an instance made with
``__new__`` (no connection, no network) runs it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from kiteconnect import KiteTicker

from kitefeed.parsers import IST, Decoder, to_kiteconnect

from .frames import HYPOTHESIS, valid_frames

OFFICIAL = KiteTicker.__new__(KiteTicker)
# The official client returns the Unix epoch for a zero time, as a naive local datetime.
OFFICIAL_EPOCH = dt.datetime.fromtimestamp(0)


def assert_same(ours: Any, theirs: Any, where: str = "tick") -> None:
    """Assert equal values, types, key order and nesting; times mapped as kitefeed documents."""
    if isinstance(theirs, dt.datetime):
        # Theirs is naive local time: a zero time is kitefeed's None, any other is the same
        # instant as kitefeed's aware datetime in UTC+05:30. Converting ours to naive local
        # time avoids guessing the offset of an ambiguous local time in zones with DST.
        if theirs == OFFICIAL_EPOCH:
            assert ours is None, where
        else:
            assert ours.tzinfo == IST, where
            assert ours.astimezone().replace(tzinfo=None) == theirs, where
        return

    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), where
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            assert_same(mine, other, f"{where}[{index}]")
    else:
        assert ours == theirs, where


@HYPOTHESIS
@given(valid_frames())
def test_matches_official_parser(message: bytes) -> None:
    ours = to_kiteconnect(Decoder().decode(message))
    theirs = OFFICIAL._parse_binary(message)
    assert_same(ours, theirs)


def test_official_instance_has_no_connection() -> None:
    # Guards the __new__ trick: the parser must not need anything __init__ sets up.
    assert not hasattr(OFFICIAL, "ws")
    assert OFFICIAL._parse_binary(b"\x00") == []
