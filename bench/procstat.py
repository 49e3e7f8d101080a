"""CPU time and resident memory of processes and threads, read from /proc (Linux only).

psutil is not a dependency, so these read the files that ``proc(5)`` describes.
"""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""Units of utime and stime in /proc/<pid>/stat per second (USER_HZ, 100 on Linux)."""

MEMORY_FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")
"""Lines of /proc/<pid>/status that :func:`memory_kib` returns, each in KiB."""


def _cpu_from_stat(path: str) -> float:
    with open(path, "rb") as file:
        text = file.read().decode()

    # The command name in brackets may contain spaces, so fields count from its end.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of every thread of ``pid`` so far, in seconds.

    The resolution is one clock tick (10 ms). Raises OSError if the process is gone.
    """
    return _cpu_from_stat(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """Return the user plus system CPU time of thread ``tid`` of process ``pid``, in seconds."""
    return _cpu_from_stat(f"/proc/{pid}/task/{tid}/stat")


def memory_kib(pid: int) -> dict[str, int]:
    """Return the resident memory of ``pid`` in KiB, by the names of :data:`MEMORY_FIELDS`.

    VmRSS is the sum of the other three: RssShmem counts the pages of shared memory
    (the rings) that this process has touched, RssAnon its private heap.
    """
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", "rb") as file:
        for line in file.read().decode().splitlines():
            name, _, value = line.partition(":")
            if name in MEMORY_FIELDS:
                found[name] = int(value.split()[0])
    return found
