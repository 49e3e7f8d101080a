"""kitefeed's Decoder against the official client's KiteTicker._parse_binary on the same messages.

The official parser (kiteconnect 5.2.2) runs on an instance made with ``__new__``: it only
uses class constants and two helper methods, so no connection is needed. Each benchmark
reports the median time of one call divided by the packets in the message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kiteconnect import KiteTicker

from kitefeed.parsers import TICK_DTYPE, Decoder, PacketKind, encode_frame

from .decoder_report import DecoderReport
from .ticks import make_ticks

SEED = 20_240_612
"""Seed of the generated mixed message."""

VECTOR = Path(__file__).resolve().parents[1].parent / "shared" / "kite" / "vectors" / "mixed_250_packets_random.bin"
"""A captured-style message of 250 random packets of every kind, kept beside the checkout."""

RECV = 1_700_000_000_000_000_000
OFFICIAL = KiteTicker.__new__(KiteTicker)
IMPLEMENTATIONS = ["decode_into", "decode", "official"]


def message_of(count: int, kinds: list[int] | np.ndarray) -> bytes:
    """Return one message of ``count`` packets with the given packet kinds, index kinds on segment 9."""
    ticks = make_ticks(count, SEED)
    ticks["kind"] = kinds
    index = np.isin(ticks["kind"], [PacketKind.INDEX_QUOTE, PacketKind.INDEX_FULL])
    ticks["instrument_token"] = (ticks["instrument_token"] << 8) | np.where(index, 9, 1)
    ticks["close"] = ticks["last_price"] * 0.99
    for name in ("open", "high", "low", "average_traded_price"):
        ticks[name] = ticks["last_price"]
    ticks["exchange_timestamp"] = np.datetime64("2024-06-11T04:00:00", "ns")
    ticks["last_trade_time"] = ticks["exchange_timestamp"]
    return encode_frame(ticks)


def _frames() -> dict[str, bytes]:
    rng = np.random.default_rng(SEED)
    frames = {
        "500 full": message_of(500, [PacketKind.FULL] * 500),
        "50 full": message_of(50, [PacketKind.FULL] * 50),
        "500 quote": message_of(500, [PacketKind.QUOTE] * 500),
        "500 mixed": message_of(500, rng.integers(PacketKind.LTP, PacketKind.FULL + 1, 500)),
    }
    if VECTOR.exists():
        frames["250 mixed (vector)"] = VECTOR.read_bytes()
    for kind in PacketKind:
        frames[f"1 {kind.name.lower().replace('_', ' ')}"] = message_of(1, [kind])
    return frames


FRAMES = _frames()


class _Summary:
    """A plugin that prints the decoder results in pytest's terminal summary."""

    def __init__(self, report: DecoderReport) -> None:
        self.report = report

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.report.ns_per_packet:
            return
        terminalreporter.section("kitefeed decoder against KiteTicker._parse_binary")
        terminalreporter.write_line(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
        for line in self.report.lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def decoder_report(request: pytest.FixtureRequest) -> DecoderReport:
    """The decoder results of this run, printed after pytest-benchmark's tables."""
    report = DecoderReport()
    request.config.pluginmanager.register(_Summary(report), "kitefeed-decoder-summary")
    return report


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("frame", list(FRAMES))
def test_decoder(benchmark: Any, decoder_report: DecoderReport, frame: str, implementation: str) -> None:
    benchmark.group = f"decode, {frame}"
    message = FRAMES[frame]
    packets = int.from_bytes(message[:2], "big")
    decoder = Decoder()

    if implementation == "decode_into":
        # A reused output buffer, as the worker reuses ring slots.
        out = np.empty(Decoder.max_ticks(message), dtype=TICK_DTYPE)
        written = benchmark(decoder.decode_into, message, out, RECV)
        assert written == packets
    elif implementation == "decode":
        ticks = benchmark(decoder.decode, message, RECV)
        assert len(ticks) == packets
    else:
        ticks = benchmark(OFFICIAL._parse_binary, message)
        assert len(ticks) == packets

    ns_per_packet = benchmark.stats.stats.median * 1e9 / packets
    benchmark.extra_info["ns_per_packet"] = round(ns_per_packet, 1)
    decoder_report.add(frame, implementation, ns_per_packet)
