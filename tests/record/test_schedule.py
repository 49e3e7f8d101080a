"""The replay schedule: batches, order and pace, computed without a clock."""

from __future__ import annotations

import numpy as np
import pytest

from kitefeed import InvalidRequestError
from kitefeed.record import default_ring_capacity, replay_schedule

MS = 1_000_000


def test_batches_split_on_time_and_key() -> None:
    times = np.array([0, 0, 0, 5, 5, 5, 9]) * MS
    keys = np.array([0, 0, 1, 1, 1, 0, 0])

    starts, due = replay_schedule(times, keys, speed=None)

    assert starts.tolist() == [0, 2, 3, 5, 6]
    assert due.tolist() == [0, 0, 0, 0, 0]


def test_recorded_pace_keeps_deltas() -> None:
    times = np.array([100, 100, 150, 400, 401]) * MS
    keys = np.zeros(5, dtype=np.uint16)

    starts, due = replay_schedule(times, keys, speed=1.0)

    assert starts.tolist() == [0, 2, 3, 4]
    assert due.tolist() == [0, 50 * MS, 300 * MS, 301 * MS]


@pytest.mark.parametrize("speed", [2.0, 10.0, 0.5])
def test_speed_divides_due_times(speed: float) -> None:
    rng = np.random.default_rng(11)
    times = np.cumsum(rng.integers(0, 20 * MS, size=500))
    keys = rng.integers(0, 3, size=500)

    _, at_recorded_pace = replay_schedule(times, keys, speed=1.0)
    _, faster = replay_schedule(times, keys, speed=speed)

    np.testing.assert_allclose(faster, at_recorded_pace / speed, atol=1)


def test_due_times_never_go_back() -> None:
    # Two keys interleaved by a reader: key 1's batch was received before key 0's.
    times = np.array([100, 90, 130, 120, 160]) * MS
    keys = np.array([0, 1, 0, 1, 0])

    starts, due = replay_schedule(times, keys, speed=1.0)

    assert starts.tolist() == [0, 1, 2, 3, 4]
    assert due.tolist() == [0, 0, 30 * MS, 30 * MS, 60 * MS]
    assert (np.diff(due) >= 0).all()


def test_max_gap_shortens_pauses() -> None:
    times = np.array([0, 10, 3_600_000, 3_600_010]) * MS  # an hour's pause in the middle
    keys = np.zeros(4, dtype=np.uint16)

    _, due = replay_schedule(times, keys, speed=1.0, max_gap_seconds=1.0)

    assert due.tolist() == [0, 10 * MS, 1_010 * MS, 1_020 * MS]


def test_empty_schedule() -> None:
    starts, due = replay_schedule(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint16), speed=1.0)

    assert len(starts) == 0
    assert len(due) == 0


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_invalid_speed_rejected(speed: float) -> None:
    with pytest.raises(InvalidRequestError, match="invalid speed"):
        replay_schedule(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.uint16), speed=speed)


def test_default_ring_capacity() -> None:
    assert default_ring_capacity(np.zeros(10, dtype=np.uint16)) == 1 << 10
    assert default_ring_capacity(np.array([0] * 3000 + [1] * 5000, dtype=np.uint16)) == 1 << 13
    assert default_ring_capacity(np.zeros(1_000_000, dtype=np.uint16)) == 1 << 18
