"""Worker commands that carry out a subscription change, each with the commands that undo it.

The supervisor sends every step of a change before it waits for any reply, so that
the workers work in parallel. If one step fails, the undo commands of the steps that
succeeded put those workers back as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..parsers import Mode
from .allocation import Slot
from .messages import Command, SetMode, Subscribe, Unsubscribe

__all__ = ["CommandFactory", "Step", "mode_step", "move_steps", "subscribe_step", "unsubscribe_step"]

CommandFactory = Callable[[int], Command]
"""Builds a command given the id that its reply will carry."""


class Step(NamedTuple):
    key: int
    command: CommandFactory
    undo: tuple[CommandFactory, ...] = ()


def _subscribe(slot: Slot, tokens: list[int], mode: Mode) -> CommandFactory:
    return lambda command_id: Subscribe(id=command_id, connection=slot.connection, tokens=tokens, mode=int(mode))


def _unsubscribe(slot: Slot, tokens: list[int]) -> CommandFactory:
    return lambda command_id: Unsubscribe(id=command_id, connection=slot.connection, tokens=tokens)


def _set_mode(slot: Slot, tokens: list[int], mode: Mode) -> CommandFactory:
    return lambda command_id: SetMode(id=command_id, connection=slot.connection, tokens=tokens, mode=int(mode))


def _by_mode(tokens: list[int], modes: Mapping[int, Mode]) -> dict[Mode, list[int]]:
    groups: dict[Mode, list[int]] = {}
    for token in tokens:
        groups.setdefault(modes[token], []).append(token)
    return groups


def subscribe_step(slot: Slot, tokens: list[int], mode: Mode) -> Step:
    """Subscribe new ``tokens`` on ``slot``."""
    return Step(slot.key, _subscribe(slot, tokens, mode), (_unsubscribe(slot, tokens),))


def unsubscribe_step(slot: Slot, tokens: list[int], modes: Mapping[int, Mode]) -> Step:
    """Unsubscribe ``tokens`` from ``slot``; ``modes`` are their current modes."""
    undo = tuple(_subscribe(slot, group, mode) for mode, group in _by_mode(tokens, modes).items())
    return Step(slot.key, _unsubscribe(slot, tokens), undo)


def mode_step(slot: Slot, tokens: list[int], modes: Mapping[int, Mode], mode: Mode) -> Step:
    """Set ``mode`` on subscribed ``tokens`` of ``slot``; ``modes`` are their current modes."""
    undo = tuple(_set_mode(slot, group, old) for old, group in _by_mode(tokens, modes).items())
    return Step(slot.key, _set_mode(slot, tokens, mode), undo)


def move_steps(
    moves: Mapping[Slot, list[int]], current: Mapping[int, Slot], modes: Mapping[int, Mode]
) -> list[Step]:
    """Move subscribed tokens to new slots: subscribe on the new one, unsubscribe from the old."""
    steps: list[Step] = []
    leaving: dict[Slot, list[int]] = {}
    for slot, tokens in moves.items():
        for mode, group in _by_mode(tokens, modes).items():
            steps.append(Step(slot.key, _subscribe(slot, group, mode), (_unsubscribe(slot, group),)))
        for token in tokens:
            leaving.setdefault(current[token], []).append(token)
    for slot, tokens in leaving.items():
        steps.append(unsubscribe_step(slot, tokens, modes))
    return steps
