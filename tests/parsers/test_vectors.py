"""Golden vectors: every captured message decodes to the values the official client returns.

Each ``<case>.bin`` is one binary message and ``<case>.json`` the output of kiteconnect
5.2.2's ``KiteTicker._parse_binary`` with datetimes written in +05:30. Floats must match
exactly. kitefeed differs from that output on purpose, and the mapping is applied here:

* A zero time is None in kitefeed; the reference gives ``1970-01-01T05:30:00+05:30``.
* kitefeed's times are aware datetimes; they are compared with the reference as instants.
* Where the reference raises (the JSON holds ``{"exception": ...}``), kitefeed keeps the
  good packets and counts the bad ones.
* A packet with fewer bytes than its length prefix declares is skipped and counted as
  truncated; the reference decodes such a slice by its present length.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from kiteconnect import KiteTicker

from kitefeed.parsers import IST, Decoder, to_kiteconnect

from .frames import VALID_LENGTHS, VECTORS, frame

CASES = sorted(VECTORS.glob("*.bin"))
REFERENCE_EPOCH = "1970-01-01T05:30:00+05:30"
OFFICIAL = KiteTicker.__new__(KiteTicker)

# Exact error counters for the public cases with damaged packets (all other counters are 0).
EXPECTED_ERRORS = {
    "error_packet_shorter_than_4": {"short_packets": 1},
    "error_count_exceeds_data": {"missing_packets": 2},
    "truncated_body_skipped": {"truncated_packets": 1},
    "unknown_length_64_skipped": {"unknown_length_packets": 1},
}
ERROR_COUNTERS = ("short_packets", "truncated_packets", "unknown_length_packets", "missing_packets")


def walk(message: bytes) -> list[tuple[int, bytes]]:
    """Return ``(declared length, present bytes)`` per packet, stopping where prefixes run out."""
    if len(message) < 2:
        return []
    count = struct.unpack_from(">H", message)[0]
    packets = []
    position = 2
    for _ in range(count):
        if position + 2 > len(message):
            break
        declared = struct.unpack_from(">H", message, position)[0]
        packets.append((declared, message[position + 2 : position + 2 + declared]))
        position += 2 + declared
    return packets


def assert_matches_reference(ours: Any, reference: Any, where: str = "tick") -> None:
    """Compare kitefeed's kiteconnect view with reference JSON: values, types, key order."""
    if isinstance(reference, str) and reference[:4].isdigit():
        if reference == REFERENCE_EPOCH:
            assert ours is None, where
        else:
            assert ours.utcoffset() == IST.utcoffset(None), where
            assert ours == dt.datetime.fromisoformat(reference), where
        return

    assert type(ours) is type(reference), f"{where}: {type(ours).__name__} != {type(reference).__name__}"
    if isinstance(reference, dict):
        assert list(ours) == list(reference), where
        for key in reference:
            assert_matches_reference(ours[key], reference[key], f"{where}.{key}")
    elif isinstance(reference, list):
        assert len(ours) == len(reference), where
        for index, (mine, theirs) in enumerate(zip(ours, reference)):
            assert_matches_reference(mine, theirs, f"{where}[{index}]")
    else:
        assert ours == reference, where


def test_vectors_directory_present() -> None:
    assert VECTORS.is_dir(), f"golden vectors not found at {VECTORS}; place the shared kite folder beside the checkout"
    assert CASES, f"no .bin vectors in {VECTORS}"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CASES] or [pytest.param(None, id="missing")])
def test_vector(path: Path | None) -> None:
    assert path is not None, f"golden vectors not found at {VECTORS}; place the shared kite folder beside the checkout"
    message = path.read_bytes()
    reference = json.loads(path.with_suffix(".json").read_text())
    decoder = Decoder()
    ours = to_kiteconnect(decoder.decode(message))
    stats = decoder.stats()
    packets = walk(message)

    # Packets that kitefeed decodes: complete and of a known length.
    good = [body for declared, body in packets if len(body) == declared and declared in VALID_LENGTHS]
    assert len(ours) == len(good)

    if isinstance(reference, dict):
        # The reference raised, so the message has a packet below 4 bytes or a missing
        # length prefix. The good packets are checked against the official parser one by one.
        assert reference["module"] == "struct"
        assert stats.short_packets + stats.missing_packets >= 1
        for index, body in enumerate(good):
            (expected,) = OFFICIAL._parse_binary(frame(body))
            assert ours[index]["instrument_token"] == expected["instrument_token"]
            assert ours[index]["last_price"] == expected["last_price"]
    else:
        # The reference decodes a truncated slice of a valid length; kitefeed drops that tick.
        decoded_by_reference = [(declared, body) for declared, body in packets if len(body) in VALID_LENGTHS]
        assert len(reference) == len(decoded_by_reference)
        expected_ticks = [
            tick for tick, (declared, body) in zip(reference, decoded_by_reference) if len(body) == declared
        ]
        assert_matches_reference(ours, expected_ticks)

    truncated = sum(1 for declared, body in packets if 4 <= len(body) < declared)
    assert stats.truncated_packets == truncated
    if path.stem in EXPECTED_ERRORS:
        expected_errors = dict.fromkeys(ERROR_COUNTERS, 0) | EXPECTED_ERRORS[path.stem]
        assert {name: getattr(stats, name) for name in ERROR_COUNTERS} == expected_errors


def test_count_exceeds_data_keeps_good_packet() -> None:
    message = (VECTORS / "error_count_exceeds_data.bin").read_bytes()
    ticks = to_kiteconnect(Decoder().decode(message))
    assert ticks == [{"tradable": True, "mode": "ltp", "instrument_token": 408065, "last_price": 0.07}]


def test_truncated_body_gives_no_tick() -> None:
    decoder = Decoder()
    assert to_kiteconnect(decoder.decode((VECTORS / "truncated_body_skipped.bin").read_bytes())) == []
    assert decoder.stats().truncated_packets == 1


# Old key names in the official mock JSON files, mapped to the names the client uses now.
OLD_KEYS = {
    "last_quantity": "last_traded_quantity",
    "average_price": "average_traded_price",
    "volume": "volume_traded",
    "buy_quantity": "total_buy_quantity",
    "sell_quantity": "total_sell_quantity",
    "timestamp": "exchange_timestamp",
}


def decode_official_packet(name: str, length: int | None = None) -> dict[str, Any]:
    body = base64.b64decode((VECTORS / "official" / f"ticker_{name}.packet").read_text())
    (tick,) = to_kiteconnect(Decoder().decode(frame(body[:length])))
    return tick


def assert_same_values(ours: Any, mock: Any, where: str) -> None:
    """Compare values only: the mock files differ in key order and write 1575.0 as 1575."""
    if isinstance(mock, dict):
        assert set(ours) == {OLD_KEYS.get(key, key) for key in mock}, where
        for key, value in mock.items():
            assert_same_values(ours[OLD_KEYS.get(key, key)], value, f"{where}.{key}")
    elif isinstance(mock, list):
        assert len(ours) == len(mock), where
        for index, (mine, theirs) in enumerate(zip(ours, mock)):
            assert_same_values(mine, theirs, f"{where}[{index}]")
    elif isinstance(mock, str) and mock[:4].isdigit():
        assert ours == dt.datetime.fromisoformat(mock), where
    else:
        assert ours == mock, where


def test_official_full_packet() -> None:
    mock = json.loads((VECTORS / "official" / "ticker_full.json").read_text())
    ours = decode_official_packet("full")
    # The mock gives change as the absolute difference last - close; kitefeed gives percent.
    absolute_change = mock.pop("change")
    last, close = ours["last_price"], ours["ohlc"]["close"]
    assert last - close == absolute_change
    assert ours["change"] == ((last - close) * 100) / close
    assert_same_values({key: value for key, value in ours.items() if key != "change"}, mock, "full")


def test_official_quote_packet() -> None:
    mock = json.loads((VECTORS / "official" / "ticker_quote.json").read_text())
    ours = decode_official_packet("quote")
    # Change is not compared: the mock's value (5.900000000000091) was copied from the full
    # packet, while this packet's own prices give an absolute difference of 5.35.
    del mock["change"]
    assert_same_values({key: value for key, value in ours.items() if key != "change"}, mock, "quote")
    assert ours["change"] == ((1573.15 - 1567.8) * 100) / 1567.8


def test_official_ltp_from_quote_packet() -> None:
    mock = json.loads((VECTORS / "official" / "ticker_ltp.json").read_text())
    assert_same_values(decode_official_packet("quote", length=8), mock, "ltp")


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CASES])
def test_installed_official_client_matches_vector(path: Path) -> None:
    # Confirms that the installed kiteconnect is the reference the vectors were made with,
    # which the random comparison in test_official_client relies on.
    reference = json.loads(path.with_suffix(".json").read_text())
    if isinstance(reference, dict):
        with pytest.raises(struct.error):
            OFFICIAL._parse_binary(path.read_bytes())
        return
    theirs = OFFICIAL._parse_binary(path.read_bytes())
    rendered = json.loads(json.dumps(theirs, default=lambda moment: moment.astimezone(IST).isoformat()))
    assert rendered == reference
