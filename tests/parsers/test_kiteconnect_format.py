"""Conversions of tick arrays to the official client's dicts, JSON-ready dicts and records."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import orjson
import pytest

from kitefeed.errors import InvalidRequestError
from kitefeed.parsers import IST, TICK_DTYPE, Decoder, to_json_ready, to_kiteconnect, to_records

from .frames import VECTORS

RECV = 1_717_576_509_123_456_789


def decode_vector(name: str) -> np.ndarray:
    return Decoder(key_index=4, connection_index=2).decode((VECTORS / f"{name}.bin").read_bytes(), RECV)


def test_times_aware_in_ist() -> None:
    (tick,) = to_kiteconnect(decode_vector("full_nse"))
    assert tick["exchange_timestamp"] == dt.datetime(2024, 6, 5, 14, 15, 9, tzinfo=IST)
    assert tick["exchange_timestamp"].utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_zero_times_are_none() -> None:
    (tick,) = to_kiteconnect(decode_vector("full_timestamps_zero"))
    assert tick["last_trade_time"] is None
    assert tick["exchange_timestamp"] is None


def test_zero_close_change_is_int_zero() -> None:
    (tick,) = to_kiteconnect(decode_vector("quote_zero_close"))
    assert tick["change"] == 0
    assert type(tick["change"]) is int


def test_json_ready_renders_times() -> None:
    ticks = decode_vector("mixed_12_packets")
    ready = to_json_ready(ticks)
    assert json.loads(json.dumps(ready)) == json.loads(orjson.dumps(to_kiteconnect(ticks)))
    (full,) = to_json_ready(decode_vector("full_nse"))
    assert full["exchange_timestamp"] == "2024-06-05T14:15:09+05:30"
    (zero,) = to_json_ready(decode_vector("index_full_ts_zero"))
    assert zero["exchange_timestamp"] is None


def test_records_have_every_field() -> None:
    records = to_records(decode_vector("mixed_12_packets"))
    assert len(records) == 12
    for record in records:
        assert list(record) == list(TICK_DTYPE.names)
    assert json.loads(json.dumps(records, allow_nan=False)) == records


def test_record_values() -> None:
    (ltp,) = to_records(decode_vector("ltp_nse"))
    assert ltp["recv_time"] == "2024-06-05T08:35:09.123456789Z"
    assert ltp["exchange_timestamp"] is None
    assert ltp["close"] is None
    assert ltp["bid_price"] == [None] * 5
    assert ltp["kind"] == 1
    assert ltp["mode"] == 1
    assert ltp["key_index"] == 4
    assert ltp["connection_index"] == 2
    assert ltp["tradable"] is True

    (full,) = to_records(decode_vector("full_nse"))
    assert full["exchange_timestamp"] == "2024-06-05T08:45:09Z"
    assert full["bid_price"] == [2874.3, 2874.25, 2874.2, 2874.15, 2874.1]
    assert full["ask_orders"] == [4, 6, 8, 10, 12]
    assert full["net_change"] is None
    assert not math.isnan(full["change"])


def test_empty_array_gives_empty_list() -> None:
    empty = np.empty(0, dtype=TICK_DTYPE)
    assert to_kiteconnect(empty) == []
    assert to_json_ready(empty) == []
    assert to_records(empty) == []


@pytest.mark.parametrize("convert", [to_kiteconnect, to_json_ready, to_records])
def test_wrong_dtype_raises(convert) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequestError, match="TICK_DTYPE"):
        convert(np.zeros(3, dtype=np.float64))


def test_unknown_kind_raises() -> None:
    ticks = np.zeros(2, dtype=TICK_DTYPE)
    with pytest.raises(InvalidRequestError, match="unknown packet kind"):
        to_kiteconnect(ticks)
