"""Journal files: round trip, decoding again, damaged tails, rotation and a writer killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kitefeed import Decoder, InvalidRequestError
from kitefeed.record import JournalReadStats, JournalWriter, decode_journal, read_journal, read_metadata

from .conftest import assert_ticks_equal, random_message

START_NS = 1_718_000_000_000_000_000
"""A receive time in June 2024, ns since the epoch."""


def write_messages(directory: Path, rng: np.random.Generator, count: int, **options: object) -> list[tuple]:
    """Append ``count`` random messages, every fifth a text message; return them as written."""
    written = []
    with JournalWriter(directory, metadata={"feed": "test", "api_keys": ["key_a", "key_b"]}, **options) as journal:
        for number in range(count):
            recv_time_ns = START_NS + number * 10_000_000
            key_index, connection = number % 2, number % 3
            if number % 5 == 4:
                payload, is_text = b'{"type": "order", "data": {}}', True
            else:
                payload, is_text = random_message(rng, int(rng.integers(0, 6))), False
            journal.append(recv_time_ns, key_index, connection, payload, is_text)
            written.append((recv_time_ns, key_index, connection, payload, is_text))
    return written


def test_journal_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    written = write_messages(tmp_path, rng, 200)

    files = sorted(tmp_path.glob("*.kfj"))
    stats = JournalReadStats()
    messages = [tuple(message) for message in read_journal(files, stats)]

    assert len(files) == 1
    assert messages == written
    assert stats.messages == 200
    assert stats.damaged_tails == 0
    assert read_metadata(files[0]) == {"feed": "test", "api_keys": ["key_a", "key_b"]}


def test_journal_decodes_like_decoder(tmp_path: Path, rng: np.random.Generator) -> None:
    written = write_messages(tmp_path, rng, 100)

    ticks, stats = decode_journal(sorted(tmp_path.glob("*.kfj")))

    decoders = {}
    expected = []
    for recv_time_ns, key_index, connection, payload, is_text in written:
        if not is_text:
            decoder = decoders.setdefault((key_index, connection), Decoder(key_index, connection))
            expected.append(decoder.decode(payload, recv_time_ns))
    assert_ticks_equal(ticks, np.concatenate(expected))
    assert stats.text_messages == 20
    assert stats.decode.errors == 0
    assert set(np.unique(ticks["connection_index"]).tolist()) == {0, 1, 2}


@pytest.mark.parametrize("kept", [5, 19, 21, 40])
def test_truncated_tail_skipped(tmp_path: Path, rng: np.random.Generator, kept: int) -> None:
    # The last record (a 20-byte header and a 30-byte text payload) keeps only `kept`
    # bytes: part of its header (5, 19) or of its payload (21, 40).
    written = write_messages(tmp_path, rng, 50)
    path = next(tmp_path.glob("*.kfj"))
    last_record_at = path.stat().st_size - 20 - len(written[-1][3])
    os.truncate(path, last_record_at + kept)

    stats = JournalReadStats()
    messages = [tuple(message) for message in read_journal(path, stats)]

    assert messages == written[:-1]
    assert stats.damaged_tails == 1
    assert stats.damaged_bytes == kept


def test_corrupt_tail_skipped(tmp_path: Path, rng: np.random.Generator) -> None:
    written = write_messages(tmp_path, rng, 30)
    path = next(tmp_path.glob("*.kfj"))
    with open(path, "ab") as file:
        file.write(rng.integers(0, 256, size=100, dtype=np.uint8).tobytes())

    stats = JournalReadStats()
    messages = [tuple(message) for message in read_journal(path, stats)]

    assert messages == written
    assert stats.damaged_tails == 1
    assert stats.damaged_bytes == 100


def test_flipped_byte_ends_file(tmp_path: Path, rng: np.random.Generator) -> None:
    written = write_messages(tmp_path, rng, 30)
    path = next(tmp_path.glob("*.kfj"))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the last payload
    path.write_bytes(bytes(data))

    stats = JournalReadStats()
    messages = [tuple(message) for message in read_journal(path, stats)]

    assert messages == written[:-1]
    assert stats.damaged_tails == 1


def test_rotation_by_size(tmp_path: Path, rng: np.random.Generator) -> None:
    written = write_messages(tmp_path, rng, 300, rotate_bytes=8_000)

    files = sorted(tmp_path.glob("*.kfj"))
    messages = [tuple(message) for message in read_journal(files)]

    assert len(files) > 3
    assert messages == written
    largest_message = max(20 + len(message[3]) for message in written)
    for path in files[:-1]:
        assert 8_000 <= path.stat().st_size < 8_000 + largest_message


def test_rotation_by_time(tmp_path: Path, rng: np.random.Generator) -> None:
    # 300 messages 10 ms apart span 3 s of receive time: 1-second files make 3 files.
    written = write_messages(tmp_path, rng, 300, rotate_bytes=None, rotate_seconds=1.0)

    files = sorted(tmp_path.glob("*.kfj"))

    assert len(files) == 3
    for number, path in enumerate(files):
        times = [message.recv_time_ns for message in read_journal(path)]
        assert times[0] == START_NS + number * 1_000_000_000
        assert times[-1] - times[0] < 1_000_000_000
    assert [tuple(message) for message in read_journal(files)] == written


def test_not_a_journal_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.kfj"
    path.write_bytes(b"PAR1" + bytes(40))

    with pytest.raises(InvalidRequestError, match="not a kitefeed journal"):
        list(read_journal(path))


def test_append_after_close_rejected(tmp_path: Path) -> None:
    journal = JournalWriter(tmp_path)
    journal.close()

    with pytest.raises(InvalidRequestError, match="closed"):
        journal.append(START_NS, 0, 0, b"\x00", False)


_WRITER = """
import sys, time
from kitefeed.record import JournalWriter
journal = JournalWriter(sys.argv[1], flush_seconds=0, fsync=False)
payload = bytes(range(256)) * 40
number = 0
while True:
    journal.append(time.time_ns(), 0, 0, payload, False)
    number += 1
    if number == 200:
        print("ready", flush=True)
"""


def test_killed_writer_leaves_readable_journal(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    stats = JournalReadStats()
    messages = list(read_journal(sorted(tmp_path.glob("*.kfj")), stats))

    assert len(messages) >= 200
    assert all(message.payload == bytes(range(256)) * 40 for message in messages)
    assert stats.damaged_tails <= 1
    assert stats.damaged_bytes < 20 + 256 * 40
