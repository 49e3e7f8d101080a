"""The supervisor restarts a worker that dies and passes server text messages on as events."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kitefeed.engine import Feed
from kitefeed.parsers.text import ErrorMessage, OrderUpdate
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, wait_for
from .test_feed import read_after_markers, seen

TOKENS = [((4000 + n) << 8) | 1 for n in range(20)]


def test_killed_worker_restarts_with_its_instruments(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS)
        on_key_a = [token for token, (api_key, _, _) in feed.subscriptions().items() if api_key == "key_a"]
        old_pid = feed._supervisor.workers[0].process.pid

        os.kill(old_pid, signal.SIGKILL)
        assert wait_for(lambda: feed.stats().keys[0].worker_restarts == 1)
        assert wait_for(lambda: feed.stats().keys[0].connected == 1)
        new_pid = feed._supervisor.workers[0].process.pid

        with feed.open_reader(start="newest") as reader:
            after = read_after_markers(feed, reader, seen(on_key_a))
        stats = feed.stats()
        events = feed.poll_events()

    assert new_pid != old_pid
    assert set(after["key_index"][after["instrument_token"] == on_key_a[0]].tolist()) == {0}
    assert stats.keys[0].instruments == len(on_key_a) + 1  # with the marker
    assert stats.keys[0].worker_alive
    worker_events = [(event.data, event.api_key) for event in events if event.kind == "worker"]
    assert ("exited", "key_a") in worker_events
    assert ("restarted", "key_a") in worker_events


def test_server_text_messages_become_events(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024) as feed:
        feed.subscribe([256265], key="key_b")
        assert wait_for(lambda: feed.stats().keys[1].connected == 1)
        order = {"order_id": "1", "status": "COMPLETE", "instrument_token": 256265}
        sim.send_text("key_b", {"type": "order", "data": order})
        sim.send_text("key_b", {"type": "error", "data": "Can't subscribe to more than 3000 instruments."})
        sim.send_text("key_b", {"type": "surprise", "data": 1})

        texts = []
        deadline = time.monotonic() + 15
        while len(texts) < 3 and time.monotonic() < deadline:
            texts += [event for event in feed.poll_events() if event.kind != "connection"]
            time.sleep(0.05)

    assert [event.kind for event in texts] == ["order", "error", "unknown"]
    assert all(event.api_key == "key_b" and event.connection == 0 for event in texts)
    assert isinstance(texts[0].data, OrderUpdate)
    assert texts[0].data.data == order
    assert isinstance(texts[1].data, ErrorMessage)
    assert texts[1].data.data == "Can't subscribe to more than 3000 instruments."


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_start_methods(sim: Simulator, method: str) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, start_method=method) as feed:  # type: ignore[arg-type]
        feed.subscribe([256265])
        with feed.open_reader() as reader:
            batch = reader.read(timeout=15)
    assert len(batch)


def test_reader_sees_restarted_writer(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS)
        with feed.open_reader() as reader:
            before = reader.writers()
            os.kill(feed._supervisor.workers[1].process.pid, signal.SIGKILL)
            assert wait_for(lambda: reader.writers()["key_b"].restarts == 1)
            assert wait_for(lambda: reader.writers()["key_b"].alive)
            after = reader.writers()

    assert before["key_b"].restarts == 0
    assert before["key_b"].alive
    assert before["key_b"].feed_alive
    assert before["key_b"].liveness_age < 5
    assert after["key_a"].restarts == 0
    assert after["key_b"].feed_alive


def test_worker_pids_are_the_workers(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024) as feed:
        pids = feed.worker_pids()
        commands = {key: Path(f"/proc/{pid}/cmdline").read_bytes() for key, pid in pids.items() if pid}
    assert list(pids) == ["key_a", "key_b"]
    assert all(pid and pid != os.getpid() for pid in pids.values())
    assert all(b"multiprocessing" in command for command in commands.values())
