"""Convert tick arrays to Python objects: the official client's tick dicts, or kitefeed records.

:func:`to_kiteconnect` returns the list that the official Python client (``kiteconnect``
5.2.2, ``KiteTicker._parse_binary``) passes to ``on_ticks``, with the same keys, key
order and nesting, so code written for that client can consume kitefeed ticks. It
differs from the official client on purpose in two ways:

* Times are timezone-aware datetimes in UTC+05:30 (Indian Standard Time). The official
  client returns naive datetimes in the local zone of the host process.
* A time field that is 0 on the wire is None. The official client returns the Unix
  epoch (1970-01-01 05:30 on an IST host).

:func:`to_records` returns every :data:`TICK_DTYPE` field for kitefeed's own JSON output.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InvalidRequestError
from .dtype import DEPTH_LEVELS, KIND_MODE, TICK_DTYPE, PacketKind

__all__ = ["IST", "to_json_ready", "to_kiteconnect", "to_records"]

IST = _dt.timezone(_dt.timedelta(hours=5, minutes=30))
"""Indian Standard Time, UTC+05:30 without daylight saving time."""

_NAT = np.iinfo(np.int64).min
_EPOCH_IST = _dt.datetime(1970, 1, 1, 5, 30, tzinfo=IST)
_MODE_NAME = {int(kind): mode.wire_name for kind, mode in KIND_MODE.items()}
_INDEX_KINDS = (PacketKind.INDEX_QUOTE, PacketKind.INDEX_FULL)


def _check_ticks(ticks: np.ndarray) -> None:
    if ticks.dtype != TICK_DTYPE:
        raise InvalidRequestError(f"ticks have dtype {ticks.dtype}; expected kitefeed TICK_DTYPE")
    if ticks.ndim != 1:
        raise InvalidRequestError(f"ticks have shape {ticks.shape}; expected a 1-D array")
    unknown = sorted(set(np.unique(ticks["kind"]).tolist()) - set(_MODE_NAME))
    if unknown:
        raise InvalidRequestError(
            f"ticks contain unknown packet kind {unknown}; expected PacketKind values, so pass only decoded ticks"
        )


def _aware_datetime(ns: int) -> _dt.datetime | None:
    """Convert nanoseconds since the epoch to an IST datetime; NaT becomes None.

    Python datetimes hold microseconds, so nanoseconds are truncated. Wire times are whole seconds.
    """
    if ns == _NAT:
        return None
    return _EPOCH_IST + _dt.timedelta(microseconds=ns // 1000)


def _iso_datetime(ns: int) -> str | None:
    moment = _aware_datetime(ns)
    return None if moment is None else moment.isoformat()


def _build(ticks: np.ndarray, convert_time: Callable[[int], Any]) -> list[dict[str, Any]]:
    _check_ticks(ticks)

    # Whole columns are converted to Python objects once; per-element numpy access is slow.
    column = {name: ticks[name].tolist() for name in TICK_DTYPE.names if TICK_DTYPE[name].base.kind != "M"}
    for name in ("exchange_timestamp", "last_trade_time"):
        column[name] = ticks[name].view(np.int64).tolist()

    result = []
    for row in range(len(ticks)):
        kind = column["kind"][row]
        tick: dict[str, Any] = {
            "tradable": column["tradable"][row],
            "mode": _MODE_NAME[kind],
            "instrument_token": column["instrument_token"][row],
            "last_price": column["last_price"][row],
        }
        if kind == PacketKind.LTP:
            result.append(tick)
            continue

        close = column["close"][row]
        if kind in _INDEX_KINDS:
            ohlc_order = ("high", "low", "open", "close")
        else:
            ohlc_order = ("open", "high", "low", "close")
            for name in (
                "last_traded_quantity",
                "average_traded_price",
                "volume_traded",
                "total_buy_quantity",
                "total_sell_quantity",
            ):
                tick[name] = column[name][row]
        tick["ohlc"] = {name: column[name][row] for name in ohlc_order}
        # The official client gives the integer 0, not 0.0, when the close is 0.
        tick["change"] = 0 if close == 0 else column["change"][row]

        if kind == PacketKind.INDEX_FULL:
            tick["exchange_timestamp"] = convert_time(column["exchange_timestamp"][row])
        elif kind == PacketKind.FULL:
            tick["last_trade_time"] = convert_time(column["last_trade_time"][row])
            for name in ("oi", "oi_day_high", "oi_day_low"):
                tick[name] = column[name][row]
            tick["exchange_timestamp"] = convert_time(column["exchange_timestamp"][row])
            tick["depth"] = {side: _depth(column, prefix, row) for side, prefix in (("buy", "bid"), ("sell", "ask"))}
        result.append(tick)
    return result


def _depth(column: dict[str, list[Any]], prefix: str, row: int) -> list[dict[str, Any]]:
    quantities = column[f"{prefix}_quantity"][row]
    prices = column[f"{prefix}_price"][row]
    orders = column[f"{prefix}_orders"][row]
    return [
        {"quantity": quantities[level], "price": prices[level], "orders": orders[level]}
        for level in range(DEPTH_LEVELS)
    ]


def to_kiteconnect(ticks: np.ndarray) -> list[dict[str, Any]]:
    """Convert ``ticks`` (a 1-D array of :data:`TICK_DTYPE`) to the official client's tick dicts.

    Times are aware datetimes in :data:`IST`, or None where the wire had 0. orjson
    serialises the result directly, with times as ISO 8601 strings ending in ``+05:30``.
    Raises :class:`~kitefeed.errors.InvalidRequestError` for another dtype or a record
    whose ``kind`` is not a :class:`PacketKind`.
    """
    return _build(ticks, _aware_datetime)


def to_json_ready(ticks: np.ndarray) -> list[dict[str, Any]]:
    """Convert ``ticks`` like :func:`to_kiteconnect`, but with times as ISO 8601 strings.

    Times read like ``"2021-07-05T10:41:27+05:30"``, or None where the wire had 0, so the
    result can go to any JSON encoder, the standard library's included.
    """
    return _build(ticks, _iso_datetime)


def _iso_utc(times: np.ndarray) -> list[str | None]:
    """Format datetime64[ns] values as ISO 8601 UTC with ``Z``; fractions only where present."""
    seconds = np.datetime_as_string(times, unit="s", timezone="UTC")
    nanoseconds = np.datetime_as_string(times, unit="ns", timezone="UTC")
    whole = times.view(np.int64) % 1_000_000_000 == 0
    text = np.where(whole, seconds, nanoseconds).tolist()
    return [None if value == "NaT" else value for value in text]


def _nan_to_none(values: list[Any]) -> list[Any]:
    """Replace NaN with None in a list of floats or of lists of floats."""
    result: list[Any] = []
    for value in values:
        if isinstance(value, list):
            result.append(_nan_to_none(value))
        elif math.isnan(value):
            result.append(None)
        else:
            result.append(value)
    return result


def to_records(ticks: np.ndarray) -> list[dict[str, Any]]:
    """Convert ``ticks`` (a 1-D array of :data:`TICK_DTYPE`) to one dict per tick with every field.

    Keys follow the dtype's field order. Times are ISO 8601 UTC strings ending in ``Z``,
    with nanoseconds only when they are not whole seconds. Prices that the packet kind
    does not carry are None instead of NaN, so any JSON encoder accepts the result.
    Depth fields are lists of 5 levels. ``kind`` and ``mode`` are the integer values of
    :class:`PacketKind` and :class:`Mode`.
    """
    if ticks.dtype != TICK_DTYPE or ticks.ndim != 1:
        raise InvalidRequestError(
            f"ticks have dtype {ticks.dtype} and shape {ticks.shape}; expected a 1-D array of kitefeed TICK_DTYPE"
        )

    columns: dict[str, list[Any]] = {}
    for name in TICK_DTYPE.names:
        values = ticks[name]
        if values.dtype.kind == "M":
            columns[name] = _iso_utc(values)
        elif values.dtype.kind == "f":
            columns[name] = _nan_to_none(values.tolist())
        else:
            columns[name] = values.tolist()
    return [{name: columns[name][row] for name in TICK_DTYPE.names} for row in range(len(ticks))]
