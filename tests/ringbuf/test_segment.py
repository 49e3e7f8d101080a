"""Segments in /dev/shm: names, permissions, listing, removal and bad headers."""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kitefeed.errors import InvalidRequestError, RingError, RingLayoutError
from kitefeed.ringbuf import Ring, list_segments, remove_segments
from kitefeed.ringbuf import layout

SHM = Path("/dev/shm")


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".hidden", "-dash", "sp ace", "x" * 201, "é"])
def test_invalid_name_rejected(name: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Ring.create(name, np.uint64, 8)
    assert repr(name)[:40] in str(info.value)


def test_segment_mode_0600(make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("mode"), np.uint64, 8) as ring:
        mode = os.stat(SHM / ring.name).st_mode
        assert stat.S_ISREG(mode)
        assert stat.S_IMODE(mode) == 0o600


def test_segment_size_is_header_and_records(make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("size"), np.dtype("<u4"), 1024) as ring:
        assert ring.nbytes == layout.header_size() + 1024 * 4
        assert os.stat(SHM / ring.name).st_size == ring.nbytes


def test_create_existing_name_fails(make_name: Callable[[str], str]) -> None:
    name = make_name("twice")
    with Ring.create(name, np.uint64, 8):
        with pytest.raises(RingError, match=name):
            Ring.create(name, np.uint64, 8)
        assert list_segments(name) == [name]


def test_attach_missing_names_segment(make_name: Callable[[str], str]) -> None:
    name = make_name("missing")
    with pytest.raises(RingError, match=f"{name}.*not found"):
        Ring.attach(name)


@pytest.mark.parametrize("capacity", [0, -4, 3, 12, 1000])
def test_capacity_not_power_of_two(make_name: Callable[[str], str], capacity: int) -> None:
    with pytest.raises(InvalidRequestError, match=f"invalid capacity {capacity}"):
        Ring.create(make_name("capacity"), np.uint64, capacity)
    assert list_segments(make_name("capacity")) == []


def test_object_dtype_rejected(make_name: Callable[[str], str]) -> None:
    with pytest.raises(InvalidRequestError, match="Python objects"):
        Ring.create(make_name("object"), np.dtype([("a", "O")]), 8)


def test_user_area_too_large(make_name: Callable[[str], str]) -> None:
    with pytest.raises(InvalidRequestError, match="user"):
        Ring.create(make_name("user"), np.uint64, 8, user=b"x" * (layout.USER_SIZE + 1))
    assert list_segments(make_name("user")) == []


def test_foreign_file_not_a_ring(make_name: Callable[[str], str]) -> None:
    name = make_name("foreign")
    (SHM / name).write_bytes(bytes(8192))
    try:
        with pytest.raises(RingLayoutError, match=f"{name}.*magic"):
            Ring.attach(name)
    finally:
        (SHM / name).unlink()


def test_short_file_not_a_ring(make_name: Callable[[str], str]) -> None:
    name = make_name("short")
    (SHM / name).write_bytes(b"kfring\r\n")
    try:
        with pytest.raises(RingLayoutError, match=name):
            Ring.attach(name)
    finally:
        (SHM / name).unlink()


def _patch_word(name: str, index: int, value: int) -> None:
    fd = os.open(SHM / name, os.O_RDWR)
    try:
        with mmap.mmap(fd, 4096) as mapping:
            words = np.frombuffer(mapping, dtype=np.uint64, count=32)
            words[index] = value
            del words
    finally:
        os.close(fd)


def test_other_version_rejected(make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("version"), np.uint64, 8) as ring:
        _patch_word(ring.name, 1, layout.VERSION + 1)
        with pytest.raises(RingLayoutError, match=f"version {layout.VERSION + 1}"):
            Ring.attach(ring.name)


def test_size_mismatch_rejected(make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("sizes"), np.uint64, 8) as ring:
        _patch_word(ring.name, 3, 16)
        with pytest.raises(RingLayoutError, match="bytes"):
            Ring.attach(ring.name)


def test_list_and_remove_by_prefix(prefix: str) -> None:
    names = [f"{prefix}{index}" for index in range(3)]
    rings = [Ring.create(name, np.uint64, 8) for name in names]
    for ring in rings:
        ring.close()

    assert list_segments(prefix) == names
    assert remove_segments(prefix) == names
    assert list_segments(prefix) == []
    with pytest.raises(RingError, match="not found"):
        Ring.attach(names[0])


def test_empty_prefix_rejected() -> None:
    with pytest.raises(InvalidRequestError):
        remove_segments("")


def test_attach_sees_header_fields(make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("fields"), np.dtype("<i2"), 64, user=b'{"group": 1}') as ring:
        with Ring.attach(ring.name) as attached:
            assert attached.capacity == 64
            assert attached.record_size == 2
            assert attached.dtype == np.dtype("<i2")
            assert attached.user == b'{"group": 1}'
            assert attached.writer_pid == os.getpid()
            assert attached.created_ns == ring.created_ns
            assert not attached.writable
            assert not attached.owner
