"""Decoder behaviour on hand-built messages: conventions, damaged input, counters."""

from __future__ import annotations

import math
import struct
import time

import numpy as np
import pytest

from kitefeed.errors import InvalidRequestError
from kitefeed.parsers import TICK_DTYPE, DecodeStats, Decoder, Mode, PacketKind

from .frames import assert_ticks_equal, frame, packet, u32s

LTP = u32s(408065, 157315)  # NSE token, 1573.15
QUOTE = u32s(408065, 157315, 1, 157033, 1175986, 256511, 360503, 156915, 157500, 156105, 156780)
INDEX_QUOTE = u32s(256265, 2200000, 2210000, 2190000, 2195000, 2100000) + struct.pack(">i", 100000)
RECV = 1_700_000_000_000_000_000


def decode(message: bytes, decoder: Decoder | None = None) -> np.ndarray:
    return (decoder or Decoder()).decode(message, RECV)


def test_heartbeat_returns_empty_array() -> None:
    decoder = Decoder()
    for message in (b"", b"\x00", b"\xff"):
        ticks = decoder.decode(message)
        assert ticks.dtype == TICK_DTYPE
        assert ticks.shape == (0,)
    stats = decoder.stats()
    assert stats.messages == 3
    assert stats.heartbeats == 3
    assert stats.bytes == 2
    assert stats.errors == 0


def test_empty_frame_is_not_heartbeat() -> None:
    decoder = Decoder()
    assert len(decoder.decode(b"\x00\x00")) == 0
    assert decoder.stats().heartbeats == 0
    assert decoder.stats().messages == 1


def test_ltp_fields_and_absent_fields() -> None:
    (tick,) = decode(frame(LTP))
    assert tick["instrument_token"] == 408065
    assert tick["last_price"] == 157315 / 100.0
    assert tick["segment"] == 1
    assert tick["tradable"]
    assert tick["kind"] == PacketKind.LTP
    assert tick["mode"] == Mode.LTP
    for name in ("open", "high", "low", "close", "change", "net_change", "average_traded_price"):
        assert math.isnan(tick[name]), name
    assert np.isnan(tick["bid_price"]).all()
    assert np.isnat(tick["exchange_timestamp"])
    assert np.isnat(tick["last_trade_time"])
    assert tick["volume_traded"] == 0


def test_index_quote_net_change_signed() -> None:
    negative = u32s(256265, 2100000, 0, 0, 0, 2200000) + struct.pack(">i", -100000)
    up, down = decode(frame(INDEX_QUOTE, negative))
    assert not up["tradable"]
    assert up["kind"] == PacketKind.INDEX_QUOTE
    assert up["mode"] == Mode.QUOTE
    assert up["net_change"] == 1000.0
    assert down["net_change"] == -1000.0
    assert down["change"] == ((21000.0 - 22000.0) * 100) / 22000.0
    assert (up["high"], up["low"], up["open"], up["close"]) == (22100.0, 21900.0, 21950.0, 21000.0)


@pytest.mark.parametrize(("segment", "divisor"), [(1, 100.0), (3, 1e7), (6, 1e4), (9, 100.0), (12, 1e4), (255, 100.0)])
def test_price_divisor_by_segment(segment: int, divisor: float) -> None:
    (tick,) = decode(frame(u32s((77 << 8) | segment, 0xFFFFFFFF)))
    assert tick["last_price"] == 0xFFFFFFFF / divisor
    assert tick["tradable"] == (segment != 9)


def test_zero_close_gives_zero_change() -> None:
    body = bytearray(QUOTE)
    body[40:44] = bytes(4)
    (tick,) = decode(frame(bytes(body)))
    assert tick["close"] == 0.0
    assert tick["change"] == 0.0


def test_recv_time_and_indices_written() -> None:
    decoder = Decoder(key_index=65535, connection_index=2)
    ticks = decoder.decode(frame(LTP, QUOTE), recv_time_ns=RECV + 7)
    assert (ticks["recv_time"] == np.datetime64(RECV + 7, "ns")).all()
    assert (ticks["key_index"] == 65535).all()
    assert (ticks["connection_index"] == 2).all()


def test_recv_time_defaults_to_now() -> None:
    before = time.time_ns()
    (tick,) = Decoder().decode(frame(LTP))
    after = time.time_ns()
    assert before <= tick["recv_time"].astype(np.int64) <= after


@pytest.mark.parametrize(("key_index", "connection_index"), [(-1, 0), (65536, 0), (0, -1), (0, 256)])
def test_invalid_indices_raise(key_index: int, connection_index: int) -> None:
    with pytest.raises(InvalidRequestError, match="invalid"):
        Decoder(key_index, connection_index)


def test_input_buffer_types_agree() -> None:
    message = frame(LTP, QUOTE, INDEX_QUOTE)
    expected = decode(message).tobytes()
    assert decode(bytearray(message)).tobytes() == expected
    assert decode(memoryview(message)).tobytes() == expected


@pytest.mark.parametrize("message", [frame(QUOTE, QUOTE, QUOTE), frame(LTP, QUOTE)], ids=["same-length", "mixed"])
def test_output_owns_its_memory(message: bytes) -> None:
    buffer = bytearray(message)
    ticks = Decoder().decode(buffer, RECV)
    before = ticks.copy()
    buffer[:] = bytes(len(buffer))
    assert ticks.flags.writeable
    assert_ticks_equal(ticks, before)


def test_wire_order_kept_across_groups() -> None:
    ticks = decode(frame(QUOTE, LTP, INDEX_QUOTE, LTP, QUOTE))
    assert ticks["kind"].tolist() == [4, 1, 2, 1, 4]


def test_same_length_frame_matches_mixed_path() -> None:
    other = u32s(408321, 100)
    same = decode(frame(LTP, other, LTP))
    mixed = decode(frame(LTP, other, LTP, QUOTE))
    assert same.tobytes() == mixed[:3].tobytes()


def test_zero_length_packet_skipped() -> None:
    decoder = Decoder()
    ticks = decode(frame(LTP, b"", QUOTE), decoder)
    assert ticks["kind"].tolist() == [PacketKind.LTP, PacketKind.QUOTE]
    assert decoder.stats().short_packets == 1
    assert decoder.stats().packets == 3


def test_packet_shorter_than_token_skipped() -> None:
    decoder = Decoder()
    assert len(decode(frame(b"\x00\x01"), decoder)) == 0
    assert decoder.stats().short_packets == 1
    assert decoder.stats().errors == 1


def test_same_short_length_in_every_packet() -> None:
    decoder = Decoder()
    assert len(decode(frame(b"\x01\x02", b"\x03\x04"), decoder)) == 0
    assert decoder.stats().short_packets == 2


def test_same_unknown_length_in_every_packet() -> None:
    decoder = Decoder()
    assert len(decode(frame(bytes(12), bytes(12)), decoder)) == 0
    assert decoder.stats().unknown_length_packets == 2


def test_truncated_last_packet_skipped() -> None:
    # 8 bytes of a 44-byte quote are present: the official client would decode them as an
    # LTP packet; kitefeed skips the packet and counts it as truncated.
    decoder = Decoder()
    message = struct.pack(">H", 2) + packet(LTP) + packet(QUOTE)[:10]
    ticks = decode(message, decoder)
    assert len(ticks) == 1
    stats = decoder.stats()
    assert stats.truncated_packets == 1
    assert stats.short_packets == 0
    assert stats.missing_packets == 0


def test_truncated_below_token_counts_as_short() -> None:
    decoder = Decoder()
    message = struct.pack(">H", 1) + packet(QUOTE)[:4]
    assert len(decode(message, decoder)) == 0
    assert decoder.stats().short_packets == 1
    assert decoder.stats().truncated_packets == 0


def test_unknown_length_skipped() -> None:
    decoder = Decoder()
    ticks = decode(frame(LTP, bytes(64), LTP), decoder)
    assert len(ticks) == 2
    assert decoder.stats().unknown_length_packets == 1


def test_count_beyond_data_counts_missing() -> None:
    decoder = Decoder()
    ticks = decode(frame(LTP, count=3), decoder)
    assert len(ticks) == 1
    assert decoder.stats().missing_packets == 2
    assert decoder.stats().packets == 1


def test_count_without_any_packet() -> None:
    decoder = Decoder()
    assert len(decode(struct.pack(">H", 5), decoder)) == 0
    assert len(decode(struct.pack(">H", 5) + b"\x00", decoder)) == 0
    assert decoder.stats().missing_packets == 10


def test_truncation_then_missing_packets() -> None:
    decoder = Decoder()
    message = struct.pack(">H", 3) + packet(QUOTE)[:30]
    assert len(decode(message, decoder)) == 0
    stats = decoder.stats()
    assert stats.truncated_packets == 1
    assert stats.missing_packets == 2
    assert stats.errors == 3


def test_trailing_bytes_ignored() -> None:
    decoder = Decoder()
    for message in (frame(LTP, LTP, count=1), frame(LTP) + b"\xff" * 5, frame(LTP, QUOTE, count=1)):
        assert len(decode(message, decoder)) == 1
    assert decoder.stats().errors == 0
    assert decoder.stats().packets == 3


def test_stats_cumulative_and_copied() -> None:
    decoder = Decoder()
    decode(frame(LTP, QUOTE), decoder)
    first = decoder.stats()
    decode(frame(LTP, bytes(12)), decoder)
    second = decoder.stats()
    assert first == DecodeStats(messages=1, bytes=len(frame(LTP, QUOTE)), packets=2, ticks=2)
    assert second.messages == 2
    assert second.ticks == 3
    assert second.unknown_length_packets == 1
    with pytest.raises(AttributeError):
        first.ticks = 0  # type: ignore[misc]
