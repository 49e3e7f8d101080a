"""The record and replay commands, each run as its own process against a real feed or replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kitefeed
from kitefeed.engine import Feed
from kitefeed.record import load_recording, read_ticks
from kitefeed.sim import Simulator

from .test_session import CREDENTIALS, TOKENS, by_key, feed_name, read_all

COMMAND = [sys.executable, "-m", "kitefeed"]


def wait_for(condition, timeout: float = 20.0) -> bool:
    """Poll ``condition`` every 50 ms; return False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def segments_of(name: str) -> list[str]:
    return [segment for segment in os.listdir("/dev/shm") if segment.startswith(f"kitefeed-{name}-")]


def test_record_command_until_feed_stops(tmp_path: Path) -> None:
    with Simulator(CREDENTIALS, tick_interval=0.05, seed=9) as sim:
        with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 14, name=feed_name("cmd")) as feed:
            process = subprocess.Popen(
                [*COMMAND, "record", "--feed", feed.name, "--out", str(tmp_path), "--rotate-mb", "0.05"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                feed.subscribe(TOKENS, "full")
                with kitefeed.open_reader(feed.name) as reader:
                    while reader.stats().read < 2000 and not reader.closed:
                        reader.read(timeout=0.2)
                    assert reader.stats().read >= 2000
            except BaseException:
                process.kill()
                raise
        # The feed stopped: the recorder drains the rings, completes its files and exits.
        try:
            stdout, stderr = process.communicate(timeout=30)
        finally:
            process.kill()

    assert process.returncode == 0, stderr
    assert "feed stopped: wrote" in stdout
    assert "lost 0 records" in stdout
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) > 1
    assert list(tmp_path.glob("*.part")) == []
    sidecars = [json.loads(path.with_name(path.name + ".json").read_text()) for path in files]
    assert all(sidecar["lost"] == 0 and sidecar["feed"] == feed.name for sidecar in sidecars)
    assert sum(sidecar["rows"] for sidecar in sidecars) == len(read_ticks(files)) >= 2000


def test_replay_command_reads_like_feed(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    run = subprocess.run(
        [*COMMAND, "record", "--from-sim", "--journal", "--seconds", "1", "--out", str(recorded)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    files = sorted(recorded.glob("*.parquet"))
    expected = load_recording(files).ticks
    assert len(expected) > 0

    name = feed_name("cmdreplay")
    process = subprocess.Popen(
        [*COMMAND, "replay", *map(str, files), "--feed", name, "--speed", "max", "--linger", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: f"kitefeed-{name}-0" in segments_of(name))
        with kitefeed.open_reader(name, wait="block") as reader:
            replayed = read_all(reader)
        # Ctrl-C ends the linger; the process removes its shared memory and exits.
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)

    assert process.returncode == 0, stderr
    assert "interrupted; shared memory removed" in stderr
    assert segments_of(name) == []
    np.testing.assert_array_equal(replayed["instrument_token"], by_key(expected, 0)["instrument_token"])
    np.testing.assert_array_equal(replayed["recv_time"], expected["recv_time"])


def test_record_journal_needs_from_sim(tmp_path: Path) -> None:
    run = subprocess.run(
        [*COMMAND, "record", "--feed", "anything", "--journal", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 2
    assert "--journal needs the raw WebSocket messages" in run.stderr


def test_replay_invalid_speed_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ticks.parquet"
    path.write_bytes(b"")
    run = subprocess.run(
        [*COMMAND, "replay", str(path), "--feed", feed_name("speed"), "--speed", "fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 2
    assert "invalid speed 'fast'" in run.stderr


@pytest.mark.parametrize("speed", ["max", "3"])
def test_replay_journal_files(tmp_path: Path, speed: str) -> None:
    run = subprocess.run(
        [*COMMAND, "record", "--from-sim", "--journal", "--no-parquet", "--seconds", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    journals = sorted(tmp_path.glob("*.kfj"))
    assert journals

    replay = subprocess.run(
        [*COMMAND, "replay", *map(str, journals), "--feed", feed_name("journal"), "--speed", speed],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert replay.returncode == 0, replay.stderr
    assert f"published {len(load_recording(journals).ticks):,} ticks" in replay.stdout
