"""Scoping of fault rules: the most specific rule wins and a wider rule replaces narrower ones."""

from __future__ import annotations

import http

from kitefeed.sim.faults import ConnectionFaults, FaultRules, HandshakeRejections, Silence, SlowWrites


def _faults(rules: FaultRules, key: str, connection_id: int) -> ConnectionFaults:
    faults = ConnectionFaults()
    rules.apply(faults, key, connection_id)
    return faults


def test_specific_rule_wins() -> None:
    rules = FaultRules()
    rules.fragment_size.set((None, None), 100)
    rules.fragment_size.set(("a", None), 200)
    rules.fragment_size.set(("a", 7), None)
    assert _faults(rules, "b", 1).fragment_size == 100
    assert _faults(rules, "a", 1).fragment_size == 200
    assert _faults(rules, "a", 7).fragment_size is None


def test_wider_rule_replaces_narrower() -> None:
    rules = FaultRules()
    rules.silence.set(("a", 7), Silence(True))
    rules.silence.set(("a", None), Silence(True, answer_pings=True))
    assert _faults(rules, "a", 7).silence == Silence(True, answer_pings=True)

    rules.silence.set((None, None), Silence())
    assert _faults(rules, "a", 7).silence == Silence()
    assert _faults(rules, "a", 8).silence == Silence()


def test_forget_connection_and_clear() -> None:
    rules = FaultRules()
    rules.slow_writes.set(("a", None), SlowWrites(10))
    rules.slow_writes.set(("a", 7), SlowWrites(20, 0.5))
    rules.forget_connection(7)
    assert _faults(rules, "a", 7).slow_writes == SlowWrites(10)
    rules.clear()
    assert _faults(rules, "a", 7) == ConnectionFaults()


def test_drops_pongs_only_while_silenced() -> None:
    assert not ConnectionFaults().drops_pongs
    assert ConnectionFaults(silence=Silence(True)).drops_pongs
    assert not ConnectionFaults(silence=Silence(True, answer_pings=True)).drops_pongs


def test_rejections_count_down_and_fall_back() -> None:
    rejections = HandshakeRejections()
    rejections.set(None, http.HTTPStatus.SERVICE_UNAVAILABLE, None)
    rejections.set("a", http.HTTPStatus.FORBIDDEN, 2)
    assert [rejections.take("a") for _ in range(3)] == [403, 403, 503]
    assert rejections.take("b") == 503
    rejections.clear()
    assert rejections.take("a") is None
