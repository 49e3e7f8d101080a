"""A supervisor killed with SIGKILL: its workers exit, and its segments can be cleaned up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kitefeed.engine import Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS

CHILD = Path(__file__).with_name("supervisor_child.py")

PID = os.getpid()
"""Fixed feed names start with the test process id, so parallel runs cannot collide."""


def process_exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def kill_supervisor(sim: Simulator, name: str) -> list[int]:
    """Start a supervisor process running feed ``name``, wait for ticks, SIGKILL it; return worker pids."""
    child = subprocess.Popen([sys.executable, str(CHILD), sim.url, name], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        workers = json.loads(line)["workers"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
    return workers


def test_workers_exit_when_supervisor_dies(sim: Simulator) -> None:
    workers = kill_supervisor(sim, f"{PID}.orphans")
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(process_exists(pid) for pid in workers):
            time.sleep(0.05)
        assert not any(process_exists(pid) for pid in workers)
    finally:
        for name in os.listdir("/dev/shm"):
            if name.startswith(f"kitefeed-{PID}.orphans"):
                os.unlink(f"/dev/shm/{name}")


def test_next_feed_of_same_name_removes_leftovers(sim: Simulator) -> None:
    kill_supervisor(sim, f"{PID}.leftover")
    assert os.path.exists(f"/dev/shm/kitefeed-{PID}.leftover-0")

    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.leftover", ring_capacity=1024) as feed:
        feed.subscribe([256265])
        with feed.open_reader() as reader:
            batch = reader.read(timeout=15)
    assert len(batch)
    assert not [name for name in os.listdir("/dev/shm") if name.startswith(f"kitefeed-{PID}.leftover")]


def test_cleanup_command_removes_leftovers(sim: Simulator) -> None:
    kill_supervisor(sim, f"{PID}.cleanup")
    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.alive", ring_capacity=1024):
        result = subprocess.run(
            [sys.executable, "-m", "kitefeed", "cleanup"], capture_output=True, text=True, timeout=60
        )
        alive_kept = os.path.exists(f"/dev/shm/kitefeed-{PID}.alive-0")
    assert result.returncode == 0, result.stderr
    assert f"kitefeed-{PID}.cleanup-0" in result.stdout
    assert not [name for name in os.listdir("/dev/shm") if name.startswith(f"kitefeed-{PID}.cleanup")]
    assert alive_kept
