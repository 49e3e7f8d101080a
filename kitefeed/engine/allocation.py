"""The allocation of instruments to API keys and connections.

Pure bookkeeping with no I/O: the supervisor plans a request here, sends the plan to
the workers, and applies it only when every worker has accepted it, so a rejected
request leaves the allocation as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ..errors import CapacityError, InvalidRequestError
from ..parsers import Mode

__all__ = [
    "Allocation",
    "MAX_CONNECTIONS_PER_KEY",
    "MAX_INSTRUMENTS_PER_CONNECTION",
    "POLICIES",
    "Slot",
    "SubscribePlan",
    "validate_tokens",
]

MAX_CONNECTIONS_PER_KEY = 3
"""Kite refuses a 4th concurrent WebSocket connection of one API key with HTTP 429."""

MAX_INSTRUMENTS_PER_CONNECTION = 3000
"""Kite refuses instruments beyond 3,000 on one connection."""

_MAX_TOKEN = 0xFFFFFFFF

POLICIES = frozenset({"round_robin", "least_loaded"})
"""Allocation policies for instruments whose key the request does not name."""


class Slot(NamedTuple):
    """One connection of one API key."""

    key: int
    connection: int


class SubscribePlan(NamedTuple):
    """New instruments per connection, and the round-robin position after them."""

    slots: dict[Slot, list[int]]
    next_key: int


def validate_tokens(tokens: int | Iterable[int]) -> list[int]:
    """Return ``tokens`` as a list of Python ints, or raise naming the first bad one.

    A token is an integer from 1 to 2**32 - 1 (numpy integers are accepted). A list may
    not name the same token twice. An empty list is valid.
    """
    if isinstance(tokens, (int, np.integer)) and not isinstance(tokens, bool):
        tokens = [tokens]
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Iterable):
        raise InvalidRequestError(
            f"invalid instrument tokens {tokens!r}: expected an integer or an iterable of integers"
        )

    result: list[int] = []
    seen: set[int] = set()
    for token in tokens:
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise InvalidRequestError(
                f"invalid instrument token {token!r}: expected an integer such as 256265"
            )
        value = int(token)
        if not 0 < value <= _MAX_TOKEN:
            raise InvalidRequestError(
                f"instrument token {value} is out of range: expected 1 to {_MAX_TOKEN}"
            )
        if value in seen:
            raise InvalidRequestError(
                f"instrument token {value} appears twice in one request; pass each token once"
            )
        seen.add(value)
        result.append(value)
    return result


class Allocation:
    """Instruments per API key and connection, with their modes.

    Round robin (the default) gives each new instrument to the next key in turn that has
    room. Least loaded gives it to the key with the fewest instruments, so keys added or
    recovered later fill up first. A manual request names the key. Within a key, an
    instrument goes to the first connection with room, so a key opens no more connections
    than its instruments need. Keys in ``exclude`` (for example keys whose token was
    rejected) take no instruments unless a request names them.
    """

    def __init__(
        self,
        key_count: int,
        *,
        policy: str = "round_robin",
        connections_per_key: int = MAX_CONNECTIONS_PER_KEY,
        instruments_per_connection: int = MAX_INSTRUMENTS_PER_CONNECTION,
    ) -> None:
        if policy not in POLICIES:
            raise InvalidRequestError(f"invalid allocation policy {policy!r}: expected one of {sorted(POLICIES)}")
        self.policy = policy
        self.key_count = key_count
        self.connections_per_key = connections_per_key
        self.instruments_per_connection = instruments_per_connection
        self.slot_of: dict[int, Slot] = {}
        self.mode_of: dict[int, Mode] = {}
        self._counts = [[0] * connections_per_key for _ in range(key_count)]
        self._next_key = 0

    def add_key(self) -> int:
        """Add an API key with no instruments and return its index."""
        self._counts.append([0] * self.connections_per_key)
        self.key_count += 1
        return self.key_count - 1

    def plan_rebalance(self, exclude: frozenset[int] = frozenset()) -> SubscribePlan:
        """Plan moves that leave the keys not in ``exclude`` within one instrument of each other.

        Keys in ``exclude`` neither give nor take instruments. Instruments leave the
        fullest keys from their last-subscribed end and go to the emptiest keys.
        """
        keys = [k for k in range(self.key_count) if k not in exclude]
        if not keys:
            return SubscribePlan({}, self._next_key)
        loads = {k: sum(self._counts[k]) for k in keys}
        total = sum(loads.values())
        share, extra = divmod(total, len(keys))
        # The fullest keys keep one more when the total does not divide evenly.
        order = sorted(keys, key=lambda k: (-loads[k], k))
        targets = {k: share + (1 if rank < extra else 0) for rank, k in enumerate(order)}

        moving: list[int] = []
        for k in keys:
            surplus = loads[k] - targets[k]
            if surplus > 0:
                moving += self.tokens_on_key(k)[-surplus:]

        counts = [list(row) for row in self._counts]
        plan: dict[Slot, list[int]] = {}
        receivers = [k for k in keys if loads[k] < targets[k]]
        for token in moving:
            chosen = next(k for k in receivers if sum(counts[k]) < targets[k])
            connection = self._first_connection_with_room(counts[chosen])
            counts[chosen][connection] += 1
            plan.setdefault(Slot(chosen, connection), []).append(token)
        return SubscribePlan(plan, self._next_key)

    @property
    def capacity(self) -> int:
        """Instruments that all keys together can carry."""
        return self.key_count * self.connections_per_key * self.instruments_per_connection

    def count(self, slot: Slot) -> int:
        """Instruments allocated to one connection."""
        return self._counts[slot.key][slot.connection]

    def key_free(self, key: int) -> int:
        """Instruments that ``key`` can still take."""
        return self.connections_per_key * self.instruments_per_connection - sum(self._counts[key])

    def tokens_of(self, slot: Slot) -> dict[int, Mode]:
        """Return the instruments of one connection and their modes."""
        return {token: self.mode_of[token] for token, where in self.slot_of.items() if where == slot}

    def distribution(self) -> list[list[int]]:
        """Instrument counts as ``[key][connection]``."""
        return [list(row) for row in self._counts]

    def plan_subscribe(
        self, tokens: list[int], key: int | None = None, *, exclude: frozenset[int] = frozenset()
    ) -> SubscribePlan:
        """Choose a connection for each token not yet subscribed, without changing anything.

        Tokens already subscribed keep their connection and are left out of the plan. Raises
        :class:`CapacityError` when the new tokens do not fit, and
        :class:`InvalidRequestError` when ``key`` is given and a token already sits on
        another key.
        """
        if key is not None:
            for token in tokens:
                slot = self.slot_of.get(token)
                if slot is not None and slot.key != key:
                    raise InvalidRequestError(
                        f"instrument token {token} is already subscribed on key index {slot.key}; "
                        f"unsubscribe it before moving it to key index {key}"
                    )
        new_tokens = [token for token in tokens if token not in self.slot_of]
        return self.plan_placement(new_tokens, key, exclude=exclude)

    def plan_placement(
        self, tokens: list[int], key: int | None = None, *, exclude: frozenset[int] = frozenset()
    ) -> SubscribePlan:
        """Choose a connection for each of ``tokens`` as if none were subscribed; changes nothing.

        Used directly to move subscribed tokens to other keys (with their current key in
        ``exclude``). Raises :class:`CapacityError` when they do not fit.
        """
        candidates = [k for k in range(self.key_count) if k not in exclude]
        if key is not None and len(tokens) > self.key_free(key):
            raise CapacityError(
                f"{len(tokens)} new instruments do not fit key index {key}, which has room for "
                f"{self.key_free(key)}; subscribe fewer or let kitefeed choose the key"
            )
        free_total = sum(self.key_free(k) for k in candidates)
        if key is None and len(tokens) > free_total:
            raise CapacityError(
                f"{len(tokens)} new instruments exceed the free capacity of {free_total} "
                f"({len(candidates)} usable keys x {self.connections_per_key} connections x "
                f"{self.instruments_per_connection} instruments, {len(self.slot_of)} in use); "
                "add API keys or unsubscribe instruments"
            )

        # Plan on a copy of the counts so that nothing changes until apply().
        counts = [list(row) for row in self._counts]
        plan: dict[Slot, list[int]] = {}
        next_key = self._next_key
        for token in tokens:
            if key is not None:
                chosen = key
            elif self.policy == "least_loaded":
                chosen = min(candidates, key=lambda k: (sum(counts[k]), k))
            else:
                chosen = self._next_key_with_room(counts, next_key, exclude)
                next_key = (chosen + 1) % self.key_count
            connection = self._first_connection_with_room(counts[chosen])
            counts[chosen][connection] += 1
            plan.setdefault(Slot(chosen, connection), []).append(token)
        return SubscribePlan(plan, next_key)

    def free(self, exclude: frozenset[int] = frozenset()) -> int:
        """Instruments that the keys not in ``exclude`` can still take."""
        return sum(self.key_free(k) for k in range(self.key_count) if k not in exclude)

    def apply_move(self, plan: SubscribePlan) -> None:
        """Move subscribed tokens to the slots of a plan from :meth:`plan_placement`."""
        for slot, planned in plan.slots.items():
            for token in planned:
                old = self.slot_of[token]
                self._counts[old.key][old.connection] -= 1
                self.slot_of[token] = slot
            self._counts[slot.key][slot.connection] += len(planned)

    def tokens_on_key(self, key: int) -> list[int]:
        """Subscribed tokens of one key, in subscription order."""
        return [token for token, slot in self.slot_of.items() if slot.key == key]

    def apply_subscribe(self, plan: SubscribePlan, tokens: list[int], mode: Mode) -> None:
        """Record a plan from :meth:`plan_subscribe` and set ``mode`` on all ``tokens``."""
        for slot, planned in plan.slots.items():
            for token in planned:
                self.slot_of[token] = slot
            self._counts[slot.key][slot.connection] += len(planned)
        self._next_key = plan.next_key
        for token in tokens:
            self.mode_of[token] = mode

    def group_subscribed(self, tokens: list[int]) -> dict[Slot, list[int]]:
        """Group subscribed ``tokens`` by connection; raises naming the first unknown token."""
        groups: dict[Slot, list[int]] = {}
        for token in tokens:
            slot = self.slot_of.get(token)
            if slot is None:
                raise InvalidRequestError(
                    f"instrument token {token} is not subscribed; subscribe it first"
                )
            groups.setdefault(slot, []).append(token)
        return groups

    def remove(self, tokens: list[int]) -> None:
        """Forget ``tokens``, which must all be subscribed."""
        for token in tokens:
            slot = self.slot_of.pop(token)
            del self.mode_of[token]
            self._counts[slot.key][slot.connection] -= 1

    def _next_key_with_room(self, counts: list[list[int]], start: int, exclude: frozenset[int]) -> int:
        limit = self.connections_per_key * self.instruments_per_connection
        for offset in range(self.key_count):
            candidate = (start + offset) % self.key_count
            if candidate not in exclude and sum(counts[candidate]) < limit:
                return candidate
        raise AssertionError("plan_subscribe checked the capacity before choosing keys")

    def _first_connection_with_room(self, row: list[int]) -> int:
        for connection, count in enumerate(row):
            if count < self.instruments_per_connection:
                return connection
        raise AssertionError("plan_subscribe checked the key's room before choosing a connection")
