"""Each change step carries the commands that undo it."""

from __future__ import annotations

from kitefeed import Mode
from kitefeed.engine.allocation import Slot
from kitefeed.engine.messages import SetMode, Subscribe, Unsubscribe
from kitefeed.engine.steps import mode_step, move_steps, subscribe_step, unsubscribe_step

A0 = Slot(0, 0)
B1 = Slot(1, 1)


def test_subscribe_undo_unsubscribes() -> None:
    step = subscribe_step(A0, [1, 2], Mode.FULL)
    assert step.command(7) == Subscribe(id=7, connection=0, tokens=[1, 2], mode=int(Mode.FULL))
    assert [undo(8) for undo in step.undo] == [Unsubscribe(id=8, connection=0, tokens=[1, 2])]


def test_unsubscribe_undo_restores_modes() -> None:
    modes = {1: Mode.LTP, 2: Mode.FULL, 3: Mode.LTP}
    step = unsubscribe_step(B1, [1, 2, 3], modes)
    assert step.key == 1
    assert step.command(1) == Unsubscribe(id=1, connection=1, tokens=[1, 2, 3])
    assert [undo(2) for undo in step.undo] == [
        Subscribe(id=2, connection=1, tokens=[1, 3], mode=int(Mode.LTP)),
        Subscribe(id=2, connection=1, tokens=[2], mode=int(Mode.FULL)),
    ]


def test_mode_undo_restores_old_modes() -> None:
    step = mode_step(A0, [1, 2], {1: Mode.QUOTE, 2: Mode.LTP}, Mode.FULL)
    assert step.command(1) == SetMode(id=1, connection=0, tokens=[1, 2], mode=int(Mode.FULL))
    assert [undo(3) for undo in step.undo] == [
        SetMode(id=3, connection=0, tokens=[1], mode=int(Mode.QUOTE)),
        SetMode(id=3, connection=0, tokens=[2], mode=int(Mode.LTP)),
    ]


def test_move_subscribes_new_and_unsubscribes_old() -> None:
    steps = move_steps({B1: [1, 2]}, {1: A0, 2: A0}, {1: Mode.FULL, 2: Mode.FULL})
    commands = [(step.key, step.command(0)) for step in steps]
    assert commands == [
        (1, Subscribe(id=0, connection=1, tokens=[1, 2], mode=int(Mode.FULL))),
        (0, Unsubscribe(id=0, connection=0, tokens=[1, 2])),
    ]
