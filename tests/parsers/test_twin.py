"""The vectorised decoder against its plain per-packet twin on random messages."""

from __future__ import annotations

from hypothesis import given

from kitefeed.parsers import Decoder
from kitefeed.parsers.reference import reference_decode

from .frames import HYPOTHESIS, any_frames, assert_ticks_equal, valid_frames

RECV = 1_600_000_000_123_456_789


def check_against_twin(message: bytes) -> None:
    decoder = Decoder(key_index=3, connection_index=1)
    ticks = decoder.decode(message, RECV)
    expected = reference_decode(message, RECV, key_index=3, connection_index=1)

    assert_ticks_equal(ticks, expected.ticks)
    stats = decoder.stats()
    assert stats.short_packets == expected.short_packets
    assert stats.truncated_packets == expected.truncated_packets
    assert stats.unknown_length_packets == expected.unknown_length_packets
    assert stats.missing_packets == expected.missing_packets
    assert stats.ticks == len(ticks)


@HYPOTHESIS
@given(valid_frames())
def test_valid_frames_match_twin(message: bytes) -> None:
    check_against_twin(message)


@HYPOTHESIS
@given(any_frames())
def test_damaged_frames_match_twin(message: bytes) -> None:
    check_against_twin(message)


@HYPOTHESIS
@given(valid_frames())
def test_valid_frames_report_no_errors(message: bytes) -> None:
    decoder = Decoder()
    ticks = decoder.decode(message, RECV)
    assert decoder.stats().errors == 0
    assert decoder.stats().packets == len(ticks)
