"""Bad calls raise clear errors and change nothing."""

from __future__ import annotations

import os

import pytest

from kitefeed import CapacityError, FeedClosedError, FeedStateError, InvalidRequestError
from kitefeed.engine import ApiKey, Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS

PID = os.getpid()
"""Fixed feed names start with the test process id, so parallel runs cannot collide."""


def test_calls_before_start_raise(sim: Simulator) -> None:
    feed = Feed(CREDENTIALS, url=sim.url)
    with pytest.raises(FeedClosedError, match="is not started"):
        feed.subscribe([256265])
    with pytest.raises(FeedClosedError):
        feed.stats()


def test_calls_after_stop_raise(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024) as feed:
        pass
    with pytest.raises(FeedClosedError, match="is stopped"):
        feed.subscribe([256265])
    with pytest.raises(FeedClosedError):
        feed.unsubscribe([256265])
    with pytest.raises(FeedStateError, match="a feed starts once"):
        feed.start()
    feed.stop()  # a second stop does nothing


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ring_capacity": 1000}, "invalid ring_capacity 1000"),
        ({"start_method": "fork"}, "invalid start_method 'fork'"),
        ({"url": "http://127.0.0.1:1"}, "invalid url"),
        ({"name": "has space"}, "invalid feed name 'has space'"),
        ({"instruments_per_connection": 3001}, "invalid instruments_per_connection 3001"),
        ({"liveness_timeout": 0}, "invalid liveness_timeout 0"),
    ],
)
def test_invalid_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        Feed(CREDENTIALS, **kwargs)  # type: ignore[arg-type]


def test_invalid_keys() -> None:
    with pytest.raises(InvalidRequestError, match="no API keys"):
        Feed({})
    with pytest.raises(InvalidRequestError, match="given twice"):
        Feed([ApiKey("a", "x"), ApiKey("a", "y")])
    with pytest.raises(InvalidRequestError, match="invalid api_key"):
        Feed({"bad key!": "t"})


@pytest.fixture
def feed(sim: Simulator) -> Feed:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, instruments_per_connection=10) as running:
        running.subscribe([101, 102, 103])
        yield running


def test_bad_requests_change_nothing(feed: Feed) -> None:
    before = (feed.subscriptions(), feed.distribution())
    cases = [
        (lambda: feed.subscribe([104, "105"]), InvalidRequestError, "invalid instrument token '105'"),
        (lambda: feed.subscribe([104, 2**32]), InvalidRequestError, "out of range"),
        (lambda: feed.subscribe([104, 104]), InvalidRequestError, "appears twice"),
        (lambda: feed.subscribe([104], mode="depth"), InvalidRequestError, "invalid mode 'depth'"),
        (lambda: feed.subscribe([104], key="key_z"), InvalidRequestError, "unknown api_key 'key_z'"),
        (lambda: feed.subscribe(list(range(200, 258))), CapacityError, "exceed the free capacity of 57"),
        (lambda: feed.subscribe(list(range(200, 231)), key="key_a"), CapacityError, "do not fit key index 0"),
        (lambda: feed.unsubscribe([101, 999]), InvalidRequestError, "token 999 is not subscribed"),
        (lambda: feed.set_mode([101, 999], "full"), InvalidRequestError, "token 999 is not subscribed"),
        (lambda: feed.set_mode([101], "ohlc"), InvalidRequestError, "invalid mode 'ohlc'"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
        assert (feed.subscriptions(), feed.distribution()) == before, message


def test_capacity_fills_exactly(feed: Feed) -> None:
    feed.subscribe(list(range(200, 257)))
    assert feed.distribution() == {"key_a": [10, 10, 10], "key_b": [10, 10, 10]}
    with pytest.raises(CapacityError):
        feed.subscribe([999])


def test_segments_removed_after_exception(sim: Simulator) -> None:
    with pytest.raises(RuntimeError, match="inside the block"):
        with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.raise", ring_capacity=1024) as feed:
            feed.subscribe([256265])
            assert os.path.exists(f"/dev/shm/kitefeed-{PID}.raise-0")
            raise RuntimeError("inside the block")
    assert not os.path.exists(f"/dev/shm/kitefeed-{PID}.raise-0")
    assert not os.path.exists(f"/dev/shm/kitefeed-{PID}.raise-1")


def test_feed_name_in_use(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.twice", ring_capacity=1024):
        second = Feed(CREDENTIALS, url=sim.url, name=f"{PID}.twice", ring_capacity=1024)
        with pytest.raises(FeedStateError, match="already has shared memory"):
            second.start()
        assert os.path.exists(f"/dev/shm/kitefeed-{PID}.twice-0")
