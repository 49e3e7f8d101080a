"""The access token never appears in reprs, process arguments, logs or events."""

from __future__ import annotations

import logging
import pickle
import time

import pytest

from kitefeed.engine import ApiKey, Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS
from .test_feed import read_after_markers, seen

TOKEN = CREDENTIALS["key_a"]


def test_api_key_hides_token() -> None:
    key = ApiKey("key_a", TOKEN)
    assert TOKEN not in repr(key)
    assert TOKEN not in str(key)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


def test_token_absent_from_worker_arguments_and_logs(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024) as feed:
        feed.subscribe([256265, 408065])
        with feed.open_reader() as reader:
            read_after_markers(feed, reader, seen([256265, 408065]))
        for handle in feed._supervisor.workers:
            with open(f"/proc/{handle.process.pid}/cmdline", "rb") as file:
                cmdline = file.read()
            assert TOKEN.encode() not in cmdline
            assert cmdline  # the process exists and has arguments
        assert TOKEN not in repr(feed)
        events = feed.poll_events()

    assert events
    assert all(TOKEN not in repr(event) for event in events)
    assert caplog.records
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def wait_for_state(feed: Feed, key_index: int, state: str, timeout: float = 15.0) -> list[str]:
    """Poll the feed's statistics until connection 0 of ``key_index`` is in ``state``."""
    deadline = time.monotonic() + timeout
    while True:
        states = [connection.state for connection in feed.stats().keys[key_index].connections]
        if states[0] == state or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


def test_rejected_token_marks_auth_failed(sim: Simulator) -> None:
    bad = {"key_a": "wrong-token", "key_b": CREDENTIALS["key_b"]}
    with Feed(bad, url=sim.url, ring_capacity=1024) as feed:
        feed.subscribe([256265], key="key_a")
        feed.subscribe([408065], key="key_b")
        states = wait_for_state(feed, 0, "auth_failed")
        with feed.open_reader() as reader:
            batch = reader.read(timeout=10)
        events = feed.poll_events()

        # A new token brings the key back, with its instrument.
        feed.set_access_token("key_a", CREDENTIALS["key_a"])
        recovered = wait_for_state(feed, 0, "connected")
        with feed.open_reader(start="newest") as reader:
            after = read_after_markers(feed, reader, seen([256265]))

    assert states[0] == "auth_failed"
    assert set(batch["key_index"].tolist()) == {1}
    failed = [event for event in events if event.kind == "connection" and event.data == "auth_failed"]
    assert failed
    assert failed[0].api_key == "key_a"
    assert "403" in failed[0].detail
    assert all("wrong-token" not in repr(event) for event in events)
    assert sim.refused.get(403, 0) >= 1
    assert recovered[0] == "connected"
    assert set(after["key_index"][after["instrument_token"] == 256265].tolist()) == {0}
