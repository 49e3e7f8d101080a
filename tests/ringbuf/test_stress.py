"""A writer at full speed and readers of every strategy, some slow, in separate processes."""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing.process import BaseProcess

from kitefeed.ringbuf import Ring

from . import stress
from .conftest import SPAWN

SEED = 20_240_611
PUBLISH_SECONDS = 2.0
READERS = [("busy", 0.0), ("spin", 0.0), ("block", 0.0), ("spin", 0.002), ("block", 0.005)]
"""Wait strategy and pause after each read, in seconds, of each reader process."""


def test_stress_readers_get_intact_records(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess]
) -> None:
    print(f"seed {SEED}")
    with Ring.create(make_name("stress"), stress.STRESS_DTYPE, 1 << 12) as ring:
        readers = []
        for wait, pause in READERS:
            parent_end, child_end = SPAWN.Pipe()
            readers.append((start_process(stress.stress_read, ring.name, wait, pause, child_end), parent_end))
            child_end.close()
        for _, connection in readers:
            assert connection.poll(60)
            assert connection.recv() == "ready"

        parent_end, child_end = SPAWN.Pipe()
        writer = start_process(stress.stress_write, ring.name, PUBLISH_SECONDS, SEED, child_end)
        child_end.close()
        parent_end.send("go")
        assert parent_end.poll(60)
        totals = parent_end.recv()
        parent_end.close()
        writer.join(timeout=30)
        assert writer.exitcode == 0
        print(totals)

        published = totals["published"]
        assert published == ring.published
        results = []
        for (process, connection), (wait, pause) in zip(readers, READERS):
            assert connection.poll(60)
            result = connection.recv()
            connection.close()
            process.join(timeout=30)
            print(wait, pause, result)
            results.append(result)

            assert process.exitcode == 0
            assert result["damaged"] == 0
            assert result["disorder"] == 0
            assert result["drained"]
            assert result["position"] == published
            assert result["received"] + result["torn"] + result["lost"] == published
            assert result["received"] + result["torn"] == result["read"]

        # The slow readers were lapped, so the loss accounting was exercised.
        assert any(result["lost"] > 0 for result in results)
