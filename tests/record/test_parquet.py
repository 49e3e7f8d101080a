"""Parquet files of ticks: schema, lossless round trip, rotation, atomic completion and sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kitefeed import Decoder, InvalidRequestError
from kitefeed.record import TICK_SCHEMA, TickFileWriter, read_parquet_metadata, read_ticks, table_to_ticks, ticks_to_table

from .conftest import assert_ticks_equal, random_message

START_NS = 1_718_000_000_000_000_000


def random_batches(rng: np.random.Generator, count: int, spacing_ns: int = 10_000_000) -> list[np.ndarray]:
    """Decode ``count`` random messages of 1 to 40 packets, ``spacing_ns`` apart, alternating keys."""
    decoders = [Decoder(0, 0), Decoder(1, 2)]
    return [
        decoders[number % 2].decode(random_message(rng, int(rng.integers(1, 41))), START_NS + number * spacing_ns)
        for number in range(count)
    ]


def test_schema_types() -> None:
    assert TICK_SCHEMA.field("recv_time").type == pa.timestamp("ns", tz="UTC")
    assert TICK_SCHEMA.field("exchange_timestamp").type == pa.timestamp("ns", tz="UTC")
    assert TICK_SCHEMA.field("last_price").type == pa.float64()
    assert TICK_SCHEMA.field("bid_price").type == pa.list_(pa.float64(), 5)
    assert TICK_SCHEMA.field("ask_orders").type == pa.list_(pa.uint16(), 5)
    assert TICK_SCHEMA.field("instrument_token").type == pa.uint32()
    assert TICK_SCHEMA.field("key_index").type == pa.uint16()
    assert TICK_SCHEMA.field("tradable").type == pa.bool_()
    assert len(TICK_SCHEMA) == 31


def test_table_round_trip_keeps_nan_and_nat(rng: np.random.Generator) -> None:
    ticks = np.concatenate(random_batches(rng, 30))
    assert np.isnat(ticks["exchange_timestamp"]).any()
    assert np.isnan(ticks["average_traded_price"]).any()

    table = ticks_to_table(ticks)

    assert table.column("exchange_timestamp").null_count == int(np.isnat(ticks["exchange_timestamp"]).sum())
    assert table.column("average_traded_price").null_count == 0
    assert_ticks_equal(table_to_ticks(table), ticks)


def test_files_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    batches = random_batches(rng, 50)
    with TickFileWriter(tmp_path, metadata={"feed": "test", "api_keys": ["a", "b"]}, row_group_rows=100) as writer:
        for batch in batches:
            writer.write(batch)

    files = sorted(tmp_path.glob("*.parquet"))

    assert files == writer.files
    assert_ticks_equal(read_ticks(files), np.concatenate(batches))
    assert read_parquet_metadata(files[0]) == {"schema_version": 1, "feed": "test", "api_keys": ["a", "b"]}
    assert pq.ParquetFile(files[0]).metadata.num_row_groups > 1


def test_file_complete_only_after_close(tmp_path: Path, rng: np.random.Generator) -> None:
    writer = TickFileWriter(tmp_path, row_group_rows=10)
    for batch in random_batches(rng, 5):
        writer.write(batch)

    assert list(tmp_path.glob("*.parquet")) == []
    assert len(list(tmp_path.glob("*.parquet.part"))) == 1

    writer.close()

    assert len(list(tmp_path.glob("*.parquet"))) == 1
    assert list(tmp_path.glob("*.part")) == []


def test_rotation_by_size(tmp_path: Path, rng: np.random.Generator) -> None:
    batches = random_batches(rng, 200)
    with TickFileWriter(tmp_path, rotate_bytes=20_000, rotate_seconds=None, row_group_rows=200) as writer:
        for batch in batches:
            writer.write(batch)

    files = sorted(tmp_path.glob("*.parquet"))

    assert len(files) > 2
    assert_ticks_equal(read_ticks(files), np.concatenate(batches))
    sidecars = [json.loads(path.with_name(path.name + ".json").read_text()) for path in files]
    assert sum(sidecar["rows"] for sidecar in sidecars) == writer.rows


def test_rotation_by_time(tmp_path: Path, rng: np.random.Generator) -> None:
    # 100 batches 50 ms apart span 5 s: 2-second files make 3 files.
    batches = random_batches(rng, 100, spacing_ns=50_000_000)
    with TickFileWriter(tmp_path, rotate_bytes=None, rotate_seconds=2.0) as writer:
        for batch in batches:
            writer.write(batch)

    files = sorted(tmp_path.glob("*.parquet"))

    assert len(files) == 3
    for number, path in enumerate(files):
        times = read_ticks([path])["recv_time"].view(np.int64)
        assert times.min() == START_NS + number * 2_000_000_000
        assert times.max() - times.min() < 2_000_000_000


def test_sidecar_counts_rows_and_lost(tmp_path: Path, rng: np.random.Generator) -> None:
    batches = random_batches(rng, 10)
    with TickFileWriter(tmp_path, metadata={"feed": "test"}) as writer:
        writer.add_lost(7)
        for batch in batches:
            writer.write(batch)
        writer.add_lost(5)

    path = writer.files[0]
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())

    assert sidecar["file"] == path.name
    assert sidecar["rows"] == sum(len(batch) for batch in batches)
    assert sidecar["lost"] == 12
    assert sidecar["feed"] == "test"
    assert sidecar["first_recv_time_ns"] == START_NS
    assert sidecar["last_recv_time_ns"] == START_NS + 9 * 10_000_000
    assert sidecar["first_recv_time"].endswith("Z")


def test_wrong_table_rejected() -> None:
    table = pa.table({"instrument_token": pa.array([1], type=pa.uint32())})

    with pytest.raises(InvalidRequestError, match="column 'recv_time'"):
        table_to_ticks(table)


def test_wrong_dtype_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="TICK_DTYPE"):
        ticks_to_table(np.zeros(3, dtype=np.float64))
