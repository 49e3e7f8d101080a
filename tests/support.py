"""Helpers shared by the test packages: polling and the segments a test process made."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

PID = os.getpid()
"""Every feed name in the tests starts with the test process id, so parallel runs cannot collide."""


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, period: float = 0.05) -> bool:
    """Poll ``condition`` every ``period`` seconds until it is true; return False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period)
    return False


def own_segments(*prefixes: str) -> set[str]:
    """Return the /dev/shm entries whose names start with one of ``prefixes``."""
    return {name for name in os.listdir("/dev/shm") if name.startswith(prefixes)}
