"""A hypothesis state machine checks rings against a model that keeps every record."""

from __future__ import annotations

import os
import secrets

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kitefeed.ringbuf import Ring, RingReader, list_segments, remove_segments

from .records import SEQ_DTYPE, damaged_positions, make_records

PREFIX = f"kftest-{os.getpid()}-{secrets.token_hex(4)}-model-"


class ReaderModel:
    """Where a reader should be, computed from the list of published positions."""

    def __init__(self, position: int) -> None:
        self.position = position
        self.lost = 0
        self.read = 0


class RingMachine(RuleBasedStateMachine):
    """Publishes random batches and reads with two readers, comparing with the model.

    The writer is in this process and idle during reads, so ``claimed`` equals
    ``published`` whenever a reader looks, which makes every result exact.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ring: Ring | None = None
        self.readers: list[tuple[RingReader, ReaderModel]] = []
        self.published = 0

    @initialize(capacity=st.sampled_from([1, 2, 8, 32]))
    def create(self, capacity: int) -> None:
        self.ring = Ring.create(f"{PREFIX}{secrets.token_hex(4)}", SEQ_DTYPE, capacity)
        self.writer = self.ring.writer()
        self.capacity = capacity
        self.readers.append((self.ring.reader("oldest"), ReaderModel(0)))

    @rule(data=st.data())
    def publish(self, data: st.DataObject) -> None:
        count = data.draw(st.integers(min_value=0, max_value=3 * self.capacity + 1), label="count")
        cursor = self.writer.publish(make_records(self.published, count))
        self.published += count
        assert cursor == self.published

    @precondition(lambda self: len(self.readers) < 3)
    @rule(start=st.sampled_from(["oldest", "newest"]))
    def add_reader(self, start: str) -> None:
        assert self.ring is not None
        reader = self.ring.reader(start)  # type: ignore[arg-type]
        if start == "newest":
            position = self.published
        else:
            position = max(0, self.published - self.capacity)
        self.readers.append((reader, ReaderModel(position)))

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.readers) - 1), label="reader")
        max_records = data.draw(st.none() | st.integers(min_value=1, max_value=self.capacity + 1), label="max")
        reader, model = self.readers[index]

        batch = reader.read_nowait(max_records)

        oldest = self.published - self.capacity
        if model.position < oldest:
            model.lost += oldest - model.position
            model.position = oldest
        count = min(self.published - model.position, self.capacity - model.position % self.capacity)
        if max_records is not None:
            count = min(count, max_records)

        assert reader.batch_position == model.position
        assert len(batch) == count
        assert damaged_positions(batch, model.position) == []
        assert not batch.flags.writeable
        assert reader.intact()
        model.position += count
        model.read += count

    @invariant()
    def counters_match(self) -> None:
        for reader, model in self.readers:
            stats = reader.stats()
            assert stats.position == model.position
            assert stats.lost == model.lost
            assert stats.read == model.read
            assert stats.published == self.published

    @invariant()
    def intact_matches_overwrites(self) -> None:
        for reader, _ in self.readers:
            assert reader.intact() == (self.published - self.capacity <= reader.batch_position)

    def teardown(self) -> None:
        if self.ring is not None:
            self.writer.close()
            for reader, _ in self.readers:
                reader.close()
            self.ring.__exit__(None, None, None)


RingMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, print_blob=True
)
TestRingModel = RingMachine.TestCase


def test_model_leaves_no_segments() -> None:
    leftovers = list_segments(PREFIX)
    remove_segments(PREFIX)
    assert leftovers == []
