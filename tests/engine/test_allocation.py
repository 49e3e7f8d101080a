from __future__ import annotations

import numpy as np
import pytest

from kitefeed import CapacityError, InvalidRequestError, Mode
from kitefeed.engine.allocation import Allocation, Slot, validate_tokens


def subscribe(allocation: Allocation, tokens: list[int], key: int | None = None) -> None:
    plan = allocation.plan_subscribe(tokens, key)
    allocation.apply_subscribe(plan, tokens, Mode.QUOTE)


def test_round_robin_alternates_keys() -> None:
    allocation = Allocation(3)
    subscribe(allocation, list(range(1, 8)))
    keys = [allocation.slot_of[token].key for token in range(1, 8)]
    assert keys == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_continues_across_requests() -> None:
    allocation = Allocation(2)
    subscribe(allocation, [1])
    subscribe(allocation, [2])
    assert allocation.slot_of[1].key == 0
    assert allocation.slot_of[2].key == 1


def test_connections_fill_in_order() -> None:
    allocation = Allocation(2, instruments_per_connection=10)
    subscribe(allocation, list(range(1, 41)))
    assert allocation.distribution() == [[10, 10, 0], [10, 10, 0]]


def test_manual_key() -> None:
    allocation = Allocation(2, instruments_per_connection=10)
    subscribe(allocation, list(range(1, 16)), key=1)
    assert allocation.distribution() == [[0, 0, 0], [10, 5, 0]]


def test_round_robin_skips_full_key() -> None:
    allocation = Allocation(2, instruments_per_connection=1)
    subscribe(allocation, [1, 2, 3], key=0)
    subscribe(allocation, [4, 5])
    assert allocation.slot_of[4].key == 1
    assert allocation.slot_of[5].key == 1


def test_capacity_error_changes_nothing() -> None:
    allocation = Allocation(2, instruments_per_connection=5)
    subscribe(allocation, list(range(1, 21)))
    before = allocation.distribution()
    with pytest.raises(CapacityError, match="11 new instruments exceed the free capacity of 10"):
        allocation.plan_subscribe(list(range(100, 111)))
    assert allocation.distribution() == before
    assert set(allocation.slot_of) == set(range(1, 21))


def test_capacity_error_for_manual_key() -> None:
    allocation = Allocation(2, instruments_per_connection=5)
    with pytest.raises(CapacityError, match="do not fit key index 0"):
        allocation.plan_subscribe(list(range(1, 17)), key=0)


def test_full_capacity_is_keys_times_9000() -> None:
    allocation = Allocation(2)
    assert allocation.capacity == 18_000
    subscribe(allocation, list(range(1, 18_001)))
    assert allocation.distribution() == [[3000, 3000, 3000], [3000, 3000, 3000]]
    with pytest.raises(CapacityError):
        allocation.plan_subscribe([18_001])


def test_resubscribe_keeps_slot() -> None:
    allocation = Allocation(2)
    subscribe(allocation, [1, 2])
    plan = allocation.plan_subscribe([1, 2, 3])
    assert plan.slots == {Slot(0, 0): [3]}


def test_moving_token_to_other_key_is_rejected() -> None:
    allocation = Allocation(2)
    subscribe(allocation, [1], key=0)
    with pytest.raises(InvalidRequestError, match="already subscribed on key index 0"):
        allocation.plan_subscribe([1], key=1)


def test_remove_frees_room() -> None:
    allocation = Allocation(1, instruments_per_connection=2)
    subscribe(allocation, [1, 2, 3])
    allocation.remove([1, 3])
    assert allocation.distribution() == [[1, 0, 0]]
    assert allocation.count(Slot(0, 0)) == 1


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([1, "2"], "invalid instrument token '2'"),
        ([True], "invalid instrument token True"),
        ([0], "out of range"),
        ([2**32], "out of range"),
        ([-5], "out of range"),
        ([7, 7], "appears twice"),
        ("256265", "expected an integer or an iterable"),
        ([1.5], "invalid instrument token 1.5"),
    ],
)
def test_validate_tokens_rejects(tokens: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        validate_tokens(tokens)  # type: ignore[arg-type]


def test_validate_tokens_accepts_numpy_and_single() -> None:
    assert validate_tokens(np.array([5, 6], dtype=np.uint32)) == [5, 6]
    assert validate_tokens(256265) == [256265]
    assert validate_tokens([]) == []


def test_least_loaded_fills_emptier_key() -> None:
    allocation = Allocation(2, policy="least_loaded")
    subscribe(allocation, list(range(1, 11)), key=0)
    subscribe(allocation, list(range(11, 21)))
    assert allocation.distribution() == [[10, 0, 0], [10, 0, 0]]
    subscribe(allocation, [21, 22])
    assert [allocation.slot_of[token].key for token in (21, 22)] == [0, 1]


def test_excluded_key_takes_nothing() -> None:
    allocation = Allocation(3)
    plan = allocation.plan_subscribe(list(range(1, 7)), exclude=frozenset({1}))
    assert {slot.key for slot in plan.slots} == {0, 2}


def test_excluded_key_reduces_capacity() -> None:
    allocation = Allocation(2, instruments_per_connection=1)
    with pytest.raises(CapacityError, match="4 new instruments exceed the free capacity of 3"):
        allocation.plan_subscribe([1, 2, 3, 4], exclude=frozenset({0}))


def test_move_between_keys() -> None:
    allocation = Allocation(2, instruments_per_connection=2)
    subscribe(allocation, [1, 2, 3], key=0)
    plan = allocation.plan_placement(allocation.tokens_on_key(0), exclude=frozenset({0}))
    allocation.apply_move(plan)
    assert allocation.distribution() == [[0, 0, 0], [2, 1, 0]]
    assert allocation.tokens_on_key(1) == [1, 2, 3]
    assert allocation.mode_of[1] is Mode.QUOTE


def test_unknown_policy() -> None:
    with pytest.raises(InvalidRequestError, match="invalid allocation policy 'random'"):
        Allocation(2, policy="random")


def test_rebalance_evens_out_keys() -> None:
    allocation = Allocation(2, instruments_per_connection=10)
    subscribe(allocation, list(range(1, 26)), key=0)
    new_key = allocation.add_key()
    plan = allocation.plan_rebalance()
    allocation.apply_move(plan)
    assert new_key == 2
    assert sorted(sum(row) for row in allocation.distribution()) == [8, 8, 9]
    assert allocation.distribution()[0] == [9, 0, 0]


def test_rebalance_skips_excluded_keys() -> None:
    allocation = Allocation(3)
    subscribe(allocation, list(range(1, 13)), key=0)
    allocation.apply_move(allocation.plan_rebalance(exclude=frozenset({1})))
    assert [sum(row) for row in allocation.distribution()] == [6, 0, 6]


def test_rebalance_of_balanced_keys_moves_nothing() -> None:
    allocation = Allocation(2)
    subscribe(allocation, list(range(1, 10)))
    assert allocation.plan_rebalance().slots == {}
