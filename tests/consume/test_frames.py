"""Batches as pandas and polars DataFrames and as Arrow tables: columns, dtypes and values."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from kitefeed import InvalidRequestError, TICK_DTYPE
from kitefeed.consume import COLUMNS, to_arrow, to_columns, to_pandas, to_polars
from kitefeed.consume.frames import TIME_COLUMNS

from .ticks import RECV_NS, decoded_ticks

SEED = 20240611

NUMPY_TO_ARROW = {
    "f8": pa.float64(),
    "u4": pa.uint32(),
    "u2": pa.uint16(),
    "u1": pa.uint8(),
    "b1": pa.bool_(),
}
NUMPY_TO_POLARS = {"f8": pl.Float64, "u4": pl.UInt32, "u2": pl.UInt16, "u1": pl.UInt8, "b1": pl.Boolean}


def field_code(column: str) -> str:
    """Return the numpy type code (like ``u4``) of the TICK_DTYPE field behind ``column``."""
    field = column if column in TICK_DTYPE.names else column.rsplit("_", 1)[0]
    base = TICK_DTYPE[field].base
    return f"{base.kind}{base.itemsize}"


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    print(f"decoded_ticks seed {SEED}")
    return decoded_ticks(SEED)


def test_columns_split_depth_per_level() -> None:
    assert COLUMNS[:3] == ("recv_time", "exchange_timestamp", "last_trade_time")
    assert [name for name in COLUMNS if name.startswith("bid_price")] == [f"bid_price_{level}" for level in range(5)]
    assert "bid_price" not in COLUMNS
    assert "instrument_token" in COLUMNS
    assert len(COLUMNS) == len(set(COLUMNS))


def test_to_columns_values(batch: np.ndarray) -> None:
    columns = to_columns(batch)

    assert tuple(columns) == COLUMNS
    for level in range(5):
        np.testing.assert_array_equal(columns[f"ask_quantity_{level}"], batch["ask_quantity"][:, level])
    np.testing.assert_array_equal(columns["instrument_token"], batch["instrument_token"])
    for values in columns.values():
        assert values.flags.c_contiguous
        assert values.flags.writeable


def test_pandas_dtypes(batch: np.ndarray) -> None:
    frame = to_pandas(batch)

    assert tuple(frame.columns) == COLUMNS
    assert len(frame) == len(batch)
    for name in TIME_COLUMNS:
        assert str(frame[name].dtype) == "datetime64[ns, UTC]", name
    for name in COLUMNS:
        if name not in TIME_COLUMNS:
            assert frame[name].dtype == np.dtype(field_code(name)), name


def test_pandas_values(batch: np.ndarray) -> None:
    frame = to_pandas(batch)

    np.testing.assert_array_equal(frame["last_price"].to_numpy(), batch["last_price"])
    np.testing.assert_array_equal(frame["bid_price_4"].to_numpy(), batch["bid_price"][:, 4])
    assert frame["recv_time"].iloc[0] == pd.Timestamp(RECV_NS, unit="ns", tz="UTC")
    assert frame["recv_time"].iloc[0].nanosecond == RECV_NS % 1000
    np.testing.assert_array_equal(frame["exchange_timestamp"].isna().to_numpy(), np.isnat(batch["exchange_timestamp"]))
    np.testing.assert_array_equal(frame["net_change"].isna().to_numpy(), np.isnan(batch["net_change"]))
    assert frame["tradable"].tolist() == batch["tradable"].tolist()


def test_polars_dtypes(batch: np.ndarray) -> None:
    frame = to_polars(batch)

    assert tuple(frame.columns) == COLUMNS
    assert frame.height == len(batch)
    for name in TIME_COLUMNS:
        assert frame.schema[name] == pl.Datetime("ns", "UTC"), name
    for name in COLUMNS:
        if name not in TIME_COLUMNS:
            assert frame.schema[name] == NUMPY_TO_POLARS[field_code(name)], name


def test_polars_values(batch: np.ndarray) -> None:
    frame = to_polars(batch)

    np.testing.assert_array_equal(frame["ask_price_0"].to_numpy(), batch["ask_price"][:, 0])
    np.testing.assert_array_equal(frame["instrument_token"].to_numpy(), batch["instrument_token"])
    assert frame["recv_time"].dt.epoch("ns")[0] == RECV_NS
    # NaT becomes null; NaN prices stay NaN, not null.
    np.testing.assert_array_equal(frame["exchange_timestamp"].is_null().to_numpy(), np.isnat(batch["exchange_timestamp"]))
    assert frame["net_change"].null_count() == 0
    assert frame["net_change"].is_nan().sum() == int(np.isnan(batch["net_change"]).sum())


def test_arrow_types(batch: np.ndarray) -> None:
    table = to_arrow(batch)

    assert tuple(table.column_names) == COLUMNS
    assert table.num_rows == len(batch)
    for name in TIME_COLUMNS:
        assert table.schema.field(name).type == pa.timestamp("ns", tz="UTC"), name
    for name in COLUMNS:
        if name not in TIME_COLUMNS:
            assert table.schema.field(name).type == NUMPY_TO_ARROW[field_code(name)], name


def test_arrow_values(batch: np.ndarray) -> None:
    table = to_arrow(batch)

    np.testing.assert_array_equal(table["oi"].to_numpy(), batch["oi"])
    np.testing.assert_array_equal(table["bid_orders_2"].to_numpy(), batch["bid_orders"][:, 2])
    assert table["recv_time"][0].value == RECV_NS
    nulls = table["last_trade_time"].is_null().to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(nulls, np.isnat(batch["last_trade_time"]))
    assert table["net_change"].null_count == 0


def test_three_conversions_agree(batch: np.ndarray) -> None:
    direct = to_arrow(batch)
    tables = {
        "pandas": pa.Table.from_pandas(to_pandas(batch), preserve_index=False),
        "polars": to_polars(batch).to_arrow(),
    }

    for library, table in tables.items():
        assert table.column_names == direct.column_names, library
        for name in COLUMNS:
            assert table[name].type == direct[name].type, (library, name)
            if name in TIME_COLUMNS:
                assert table[name].to_pylist() == direct[name].to_pylist(), (library, name)
            else:
                # assert_array_equal treats NaN as equal to NaN, unlike ==.
                np.testing.assert_array_equal(table[name].to_numpy(), direct[name].to_numpy(), err_msg=f"{library} {name}")


def test_packed_dtype_accepted(batch: np.ndarray) -> None:
    packed = np.zeros(len(batch), dtype=np.dtype([(name, TICK_DTYPE[name]) for name in TICK_DTYPE.names]))
    for name in TICK_DTYPE.names:
        packed[name] = batch[name]

    assert packed.dtype.itemsize < TICK_DTYPE.itemsize
    assert to_arrow(packed).schema == to_arrow(batch).schema
    expected = to_columns(batch)
    for name, values in to_columns(packed).items():
        np.testing.assert_array_equal(values, expected[name], err_msg=name)


def test_empty_batch_keeps_types() -> None:
    empty = np.empty(0, dtype=TICK_DTYPE)

    assert to_pandas(empty).shape == (0, len(COLUMNS))
    assert str(to_pandas(empty)["recv_time"].dtype) == "datetime64[ns, UTC]"
    assert to_polars(empty).schema["instrument_token"] == pl.UInt32
    assert to_arrow(empty).schema.field("exchange_timestamp").type == pa.timestamp("ns", tz="UTC")


def test_result_outlives_batch(batch: np.ndarray) -> None:
    source = batch.copy()
    frame = to_pandas(source)
    table = to_arrow(source)
    polars_frame = to_polars(source)

    source["last_price"] = -1.0

    assert frame["last_price"].iloc[0] == batch["last_price"][0]
    assert table["last_price"][0].as_py() == batch["last_price"][0]
    assert polars_frame["last_price"][0] == batch["last_price"][0]


@pytest.mark.parametrize("bad", [np.zeros(3, dtype=np.float64), np.zeros((2, 2), dtype=TICK_DTYPE), [1, 2]])
def test_invalid_batch_rejected(bad: object) -> None:
    with pytest.raises(InvalidRequestError, match="expected a 1-D array of kitefeed.TICK_DTYPE"):
        to_arrow(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("convert", "module"), [(to_pandas, "pandas"), (to_polars, "polars"), (to_arrow, "pyarrow")]
)
def test_missing_library_names_extra(
    convert: object, module: str, batch: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as when the package is absent.
    monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(ImportError, match=r"pip install 'kitefeed\[dataframes\]'") as caught:
        convert(batch)  # type: ignore[operator]
    assert module in str(caught.value)
