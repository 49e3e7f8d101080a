"""Convert tick batches to pandas and polars DataFrames and to Arrow tables.

All three conversions produce the same columns, in the order of :data:`COLUMNS`:

* one column per scalar field of :data:`~kitefeed.TICK_DTYPE`, with its numpy type:
  unsigned integers stay unsigned (``instrument_token`` is uint32), prices are float64
  rupees, ``tradable`` is bool;
* the market depth as 5 columns per depth field, named ``<field>_<level>`` with level 0
  the best: ``bid_price_0`` ... ``bid_price_4``, ``ask_quantity_0`` ... and so on;
* ``recv_time``, ``exchange_timestamp`` and ``last_trade_time`` as timezone-aware UTC
  timestamps with nanosecond resolution. A NaT (0 on the wire, or a field the packet
  kind does not carry) becomes NaT in pandas and null in polars and Arrow;
* ``kind`` and ``mode`` as uint8 values of :class:`~kitefeed.PacketKind` and
  :class:`~kitefeed.Mode`, not categoricals, so columns of different batches concatenate
  without reconciling categories.

Prices a packet kind does not carry are NaN (not null) in all three, as in the batch.
The libraries are optional (``pip install 'kitefeed[dataframes]'``) and are imported
only when a conversion is called. Every conversion copies the data, so the result
stays valid after the batch's shared memory is overwritten.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidRequestError
from ..parsers import TICK_DTYPE

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

__all__ = ["COLUMNS", "TIME_COLUMNS", "to_arrow", "to_columns", "to_pandas", "to_polars"]

TIME_COLUMNS = tuple(name for name in TICK_DTYPE.names or () if TICK_DTYPE[name].kind == "M")
"""Names of the timestamp columns, which the conversions make timezone-aware UTC."""


def _column_names() -> tuple[str, ...]:
    names: list[str] = []
    for name in TICK_DTYPE.names or ():
        field = TICK_DTYPE[name]
        if field.shape:
            names.extend(f"{name}_{level}" for level in range(field.shape[0]))
        else:
            names.append(name)
    return tuple(names)


COLUMNS = _column_names()
"""Column names of every conversion, in order: the dtype's fields, depth fields split per level."""


def has_tick_fields(dtype: np.dtype[Any]) -> bool:
    """Return whether ``dtype`` has the fields of TICK_DTYPE, in order and of the same types.

    Such a dtype may lack the padding of TICK_DTYPE: ``np.concatenate`` of batches read
    from a ring returns a packed 267-byte dtype, because the ring's copy of the dtype is
    not flagged as an aligned struct.
    """
    names = TICK_DTYPE.names or ()
    return dtype.names == names and all(dtype[name] == TICK_DTYPE[name] for name in names)


def to_columns(batch: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
    """Split ``batch`` (a 1-D array of :data:`~kitefeed.TICK_DTYPE`, padded or packed) into one array per column of :data:`COLUMNS`.

    Each array is a new C-contiguous copy of length ``len(batch)`` with the field's
    numpy dtype; timestamps stay ``datetime64[ns]`` (UTC, without a zone). Raises
    :class:`~kitefeed.InvalidRequestError` for another dtype or shape.
    """
    if not isinstance(batch, np.ndarray) or not has_tick_fields(batch.dtype) or batch.ndim != 1:
        found = f"dtype {batch.dtype} and shape {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise InvalidRequestError(f"invalid batch of {found}: expected a 1-D array of kitefeed.TICK_DTYPE")

    columns: dict[str, np.ndarray[Any, Any]] = {}
    for name in TICK_DTYPE.names or ():
        values = batch[name]
        if values.ndim == 2:
            for level in range(values.shape[1]):
                columns[f"{name}_{level}"] = np.ascontiguousarray(values[:, level])
        else:
            # A field of a structured array is a strided view; the libraries want contiguous memory.
            columns[name] = np.ascontiguousarray(values)
    return columns


def _require(module: str, function: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{function}() needs {module}, which is not installed: pip install 'kitefeed[dataframes]'"
        ) from exc


def to_pandas(batch: np.ndarray[Any, Any]) -> "pandas.DataFrame":
    """Convert ``batch`` to a pandas DataFrame of :data:`COLUMNS` with a default RangeIndex.

    Timestamps are ``datetime64[ns, UTC]``. Raises ImportError naming the extra when
    pandas is missing.
    """
    pd = _require("pandas", "to_pandas")
    columns: dict[str, Any] = to_columns(batch)
    for name in TIME_COLUMNS:
        columns[name] = pd.DatetimeIndex(columns[name]).tz_localize("UTC")
    return pd.DataFrame(columns, columns=list(COLUMNS))


def to_polars(batch: np.ndarray[Any, Any]) -> "polars.DataFrame":
    """Convert ``batch`` to a polars DataFrame of :data:`COLUMNS`.

    Timestamps are ``Datetime("ns", "UTC")``, with null for NaT. Raises ImportError
    naming the extra when polars is missing.
    """
    pl = _require("polars", "to_polars")
    series = []
    for name, values in to_columns(batch).items():
        column = pl.Series(name, values)
        if name in TIME_COLUMNS:
            column = column.dt.replace_time_zone("UTC")
        series.append(column)
    return pl.DataFrame(series)


def to_arrow(batch: np.ndarray[Any, Any]) -> "pyarrow.Table":
    """Convert ``batch`` to a pyarrow Table of :data:`COLUMNS`.

    Timestamps are ``timestamp[ns, tz=UTC]``, with null for NaT. Raises ImportError
    naming the extra when pyarrow is missing.
    """
    pa = _require("pyarrow", "to_arrow")
    arrays = []
    for name, values in to_columns(batch).items():
        if name in TIME_COLUMNS:
            arrays.append(pa.array(values.view(np.int64), type=pa.timestamp("ns", tz="UTC"), mask=np.isnat(values)))
        else:
            arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))
