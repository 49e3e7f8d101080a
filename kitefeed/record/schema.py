"""The Arrow schema of recorded ticks, and lossless conversions to and from :data:`TICK_DTYPE`.

One column per :data:`TICK_DTYPE` field, with the same name:

- times (``recv_time``, ``exchange_timestamp``, ``last_trade_time``): ``timestamp[ns, tz=UTC]``;
  NaT becomes null, and null becomes NaT again on the way back.
- prices: ``double``; an absent price stays NaN (not null).
- market depth (``bid_price``, ``ask_price``, ``bid_quantity``, ``ask_quantity``,
  ``bid_orders``, ``ask_orders``): ``fixed_size_list<..>[5]``, best level first.
- integers keep their width and sign (``uint32``, ``uint16``, ``uint8``); ``tradable`` is ``bool``.

pyarrow is imported only by this package, which the ``record`` extra installs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import InvalidRequestError
from ..parsers import TICK_DTYPE

__all__ = ["SCHEMA_VERSION", "TICK_SCHEMA", "file_metadata", "table_to_ticks", "ticks_to_table"]

SCHEMA_VERSION = 1
"""Version of the column layout, stored in every file's metadata under ``kitefeed``."""

_METADATA_KEY = b"kitefeed"


def _arrow_type(dtype: np.dtype[Any]) -> pa.DataType:
    base = dtype.base
    if base.kind == "M":
        scalar = pa.timestamp("ns", tz="UTC")
    else:
        scalar = pa.from_numpy_dtype(base)
    if dtype.shape:
        return pa.list_(scalar, dtype.shape[0])
    return scalar


TICK_SCHEMA = pa.schema([pa.field(name, _arrow_type(TICK_DTYPE[name]), nullable=TICK_DTYPE[name].kind == "M")
                         for name in TICK_DTYPE.names])
"""Arrow schema of a table of ticks, without the file metadata."""


def file_metadata(info: Mapping[str, Any]) -> dict[bytes, bytes]:
    """Return schema metadata that stores ``info`` (JSON) and the schema version."""
    document = {"schema_version": SCHEMA_VERSION, **info}
    return {_METADATA_KEY: json.dumps(document).encode()}


def read_file_metadata(schema: pa.Schema) -> dict[str, Any]:
    """Return the ``kitefeed`` metadata object of a schema read from a file, {} when absent."""
    raw = (schema.metadata or {}).get(_METADATA_KEY)
    if raw is None:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def ticks_to_table(ticks: np.ndarray[Any, Any], metadata: dict[bytes, bytes] | None = None) -> pa.Table:
    """Convert a 1-D array of :data:`TICK_DTYPE` into a table of :data:`TICK_SCHEMA`.

    The table copies the columns, so ``ticks`` may be a view into shared memory that is
    overwritten later (check the reader's ``intact()`` after the call).
    """
    if ticks.dtype != TICK_DTYPE or ticks.ndim != 1:
        raise InvalidRequestError(f"invalid ticks: expected a 1-D array of TICK_DTYPE, found {ticks.ndim}-D of {ticks.dtype}")
    columns = []
    for field in TICK_SCHEMA:
        values = np.ascontiguousarray(ticks[field.name])
        if pa.types.is_fixed_size_list(field.type):
            flat = pa.array(values.reshape(-1), type=field.type.value_type)
            columns.append(pa.FixedSizeListArray.from_arrays(flat, field.type.list_size))
        else:
            columns.append(pa.array(values, type=field.type))
    schema = TICK_SCHEMA if metadata is None else TICK_SCHEMA.with_metadata(metadata)
    return pa.Table.from_arrays(columns, schema=schema)


def table_to_ticks(table: pa.Table) -> np.ndarray[Any, Any]:
    """Convert a table of :data:`TICK_SCHEMA` into a new 1-D array of :data:`TICK_DTYPE`.

    Columns are matched by name; a missing column or one of another type raises
    InvalidRequestError, because the file was not written by this schema version.
    """
    ticks = np.zeros(table.num_rows, dtype=TICK_DTYPE)
    for field in TICK_SCHEMA:
        index = table.schema.get_field_index(field.name)
        if index < 0 or table.schema.field(index).type != field.type:
            found = "missing" if index < 0 else str(table.schema.field(index).type)
            raise InvalidRequestError(
                f"invalid tick table: column {field.name!r} should be {field.type}, found {found}; "
                "read files written by this version of kitefeed record"
            )
        column = table.column(index).combine_chunks()
        if pa.types.is_fixed_size_list(field.type):
            flat = column.flatten().to_numpy(zero_copy_only=False)
            ticks[field.name] = flat.reshape(table.num_rows, field.type.list_size)
        elif pa.types.is_timestamp(field.type):
            # Null becomes NaT: the int64 storage of null slots is filled with NaT's value.
            storage = column.cast(pa.int64()).fill_null(np.iinfo(np.int64).min)
            ticks[field.name] = storage.to_numpy().view("M8[ns]")
        else:
            ticks[field.name] = column.to_numpy(zero_copy_only=False)
    return ticks
