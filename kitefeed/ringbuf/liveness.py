"""Whether a process is alive, told apart from a later process that reuses its id."""

from __future__ import annotations

import os

from ..errors import RingError

__all__ = ["process_alive", "process_start_time", "self_identity"]


def process_start_time(pid: int) -> int | None:
    """Return the start time of process ``pid``, or None when no such process exists.

    The value is field 22 of ``/proc/<pid>/stat``: clock ticks from boot to the start of
    the process. A process id and its start time together name one process for the
    lifetime of the host, because Linux only reuses an id after its process has exited.
    A zombie (exited but not yet reaped) counts as not existing.
    """
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            text = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None

    # The command name (field 2) is in parentheses and may contain spaces and ')', so
    # the fields are counted from the last ')'. Field 3 is the state, field 22 the start time.
    fields = text[text.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def process_alive(pid: int, start_time: int) -> bool:
    """Return whether process ``pid`` exists and started at ``start_time``."""
    return start_time != 0 and process_start_time(pid) == start_time


def self_identity() -> tuple[int, int]:
    """Return this process's id and start time."""
    pid = os.getpid()
    start_time = process_start_time(pid)
    if start_time is None:
        raise RingError(f"cannot read /proc/{pid}/stat: kitefeed rings need Linux with /proc mounted")
    return pid, start_time
