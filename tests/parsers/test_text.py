"""Text messages: typed objects for known types, kept objects for everything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kitefeed.parsers import (
    BrokerMessage,
    ErrorMessage,
    InvalidMessage,
    OrderUpdate,
    UnknownMessage,
    parse_text,
)

from .frames import HYPOTHESIS

ORDER = {
    "order_id": "260605000123456",
    "status": "COMPLETE",
    "instrument_token": 1234561,
    "price": 101.5,
    "parent_order_id": None,
    "meta": {},
}


def test_order_update() -> None:
    message = parse_text(json.dumps({"type": "order", "data": ORDER}))
    assert message == OrderUpdate(ORDER)


def test_order_update_from_bytes() -> None:
    message = parse_text(json.dumps({"type": "order", "data": ORDER}).encode())
    assert isinstance(message, OrderUpdate)
    assert message.data["status"] == "COMPLETE"


def test_error_message() -> None:
    text = "Can't subscribe to more than 3000 instruments."
    assert parse_text(json.dumps({"type": "error", "data": text})) == ErrorMessage(text)


@pytest.mark.parametrize("data", ["Market will close early today at 14:30.", {"title": "x", "n": 2}, None, [1, 2]])
def test_broker_message_keeps_any_data(data: object) -> None:
    assert parse_text(json.dumps({"type": "message", "data": data})) == BrokerMessage(data)


def test_broker_message_without_data() -> None:
    assert parse_text('{"type": "message"}') == BrokerMessage(None)


def test_extra_members_ignored() -> None:
    assert parse_text('{"data": "x", "type": "error", "id": 7}') == ErrorMessage("x")


def test_unknown_type_kept() -> None:
    assert parse_text('{"type": "quote_alert", "data": {"a": 1}}') == UnknownMessage("quote_alert", {"a": 1})
    assert parse_text('{"type": "later"}') == UnknownMessage("later", None)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "",
        "[1, 2]",
        '"order"',
        "{}",
        '{"type": 5, "data": "x"}',
        '{"type": null}',
        '{"type": "error", "data": "x"} trailing',
        '{"type": "order", "data": [1]}',
        '{"type": "order"}',
        '{"type": "error", "data": {"message": "x"}}',
        '{"type": "error"}',
    ],
)
def test_invalid_text_kept(text: str) -> None:
    message = parse_text(text)
    assert isinstance(message, InvalidMessage)
    assert message.text == text
    assert message.reason


def test_invalid_utf8_kept_with_replacement() -> None:
    message = parse_text(b'{"type": "error", "data": "\xff"}')
    assert isinstance(message, InvalidMessage)
    assert message.text == '{"type": "error", "data": "\ufffd"}'


def test_large_integer_in_order_kept() -> None:
    message = parse_text('{"type": "order", "data": {"app_id": 123456789012345678901234567890}}')
    assert message == OrderUpdate({"app_id": 123456789012345678901234567890})


@HYPOTHESIS
@given(st.one_of(st.text(max_size=60), st.binary(max_size=60)))
def test_parse_text_never_raises(text: str | bytes) -> None:
    message = parse_text(text)
    assert isinstance(message, (OrderUpdate, ErrorMessage, BrokerMessage, UnknownMessage, InvalidMessage))
