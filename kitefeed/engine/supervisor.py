"""The supervisor behind a :class:`~kitefeed.Feed`: workers, rings, restarts and failover.

A monitor thread reads every worker's pipe, so replies, server messages and worker
exits are handled while the caller's thread does other work. Jobs that wait for
replies (restarting a worker, moving instruments between keys) run on a job thread.
Every change to the allocation happens under one lock, and the monitor never takes it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext

from ..errors import WorkerError
from ..parsers import Mode
from ..parsers.text import parse_text
from ..ringbuf import Ring
from .allocation import Allocation, Slot
from .credentials import ApiKey
from .events import FeedEvent, text_kind
from .jobs import JobThread
from .messages import ConnectionEvent, ConnectionSettings, SetToken, TextEvent, decode_worker_message
from .process import PendingReply, WorkerHandle
from .steps import Step, move_steps, subscribe_step

__all__ = ["Supervisor"]

logger = logging.getLogger(__name__)

_MONITOR_PERIOD = 0.1
_EVENT_BACKLOG = 10_000
_STABLE_RUN = 30.0
"""A worker that ran this many seconds before it died is restarted without delay."""


def restart_delay(restarts: int) -> float:
    """Seconds before restarting a worker that died soon after its previous start."""
    return min(5.0, 0.25 * 2 ** min(restarts, 5))


class Supervisor:
    """Workers of one feed, one per key, and the allocation of instruments to them."""

    def __init__(
        self,
        keys: list[ApiKey],
        rings: list[Ring],
        allocation: Allocation,
        *,
        context: BaseContext,
        url: str,
        settings: ConnectionSettings,
        request_timeout: float,
        failover: bool,
        on_event: Callable[[FeedEvent], None] | None,
    ) -> None:
        self.keys = keys
        self.allocation = allocation
        self.lock = threading.RLock()
        self.failed_keys: set[int] = set()
        self.workers = [
            WorkerHandle(index, key, context=context, url=url, ring_name=ring.name, settings=settings)
            for index, (key, ring) in enumerate(zip(keys, rings))
        ]
        self._context = context
        self._url = url
        self._settings = settings
        self._request_timeout = request_timeout
        self._failover = failover
        self._on_event = on_event
        self._home: dict[int, int] = {}  # token -> the key it left when its key failed
        self._started_at: dict[int, float] = {}
        self._events: collections.deque[FeedEvent] = collections.deque(maxlen=_EVENT_BACKLOG)
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._monitor_loop, name="kitefeed-monitor", daemon=True)
        self._jobs = JobThread("kitefeed-jobs")

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        for handle in self.workers:
            handle.start(self._request_timeout)
            self._started_at[handle.key_index] = time.monotonic()
        self._monitor.start()
        self._jobs.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._jobs.is_alive():
            self._jobs.stop()
        for handle in self.workers:
            try:
                handle.stop(timeout=3.0)
            except Exception:  # noqa: BLE001 - keep stopping the others
                logger.exception("stopping worker for key index %d failed", handle.key_index)
        if self._monitor.is_alive():
            self._monitor.join(timeout=2.0)

    def add_worker(self, key: ApiKey, ring: Ring) -> None:
        """Start the worker of a new key, whose ApiKey and ring the caller appended to the shared lists."""
        handle = WorkerHandle(
            len(self.workers), key, context=self._context, url=self._url, ring_name=ring.name, settings=self._settings
        )
        handle.start(self._request_timeout)
        self._started_at[handle.key_index] = time.monotonic()
        # The monitor thread builds its wait list from this list on every pass.
        self.workers.append(handle)

    def rebalance(self) -> int:
        """Move instruments so that the working keys carry about as many each; returns how many moved."""
        with self.lock:
            plan = self.allocation.plan_rebalance(exclude=frozenset(self.failed_keys))
            moving = [token for tokens in plan.slots.values() for token in tokens]
            if not moving:
                return 0
            self.execute(move_steps(plan.slots, self.allocation.slot_of, self.allocation.mode_of))
            self.allocation.apply_move(plan)
        logger.info("rebalanced %d instruments across %d keys", len(moving), len(self.workers))
        return len(moving)

    # -- carrying out changes -----------------------------------------------------------------

    def execute(self, steps: Iterable[Step]) -> None:
        """Send every step, wait for all replies, and undo the successful ones if one failed.

        A worker that is being restarted gets no command: the restart restores its
        instruments from the allocation, which the caller updates after this returns.
        Raises :class:`WorkerError` naming the key whose worker failed.
        """
        sent: list[tuple[Step, PendingReply]] = []
        for step in steps:
            handle = self.workers[step.key]
            if handle.pipe is None:
                continue
            sent.append((step, handle.send(step.command)))

        succeeded: list[Step] = []
        failures: list[str] = []
        for step, waiter in sent:
            try:
                waiter.wait(self._request_timeout)
                succeeded.append(step)
            except WorkerError as exc:
                failures.append(f"key {self.keys[step.key].api_key!r}: {exc}")
        if not failures:
            return

        for step in succeeded:
            for undo in step.undo:
                self.workers[step.key].send(undo)
        raise WorkerError(f"{'; '.join(failures)}; the request was undone on the other keys")

    def set_token(self, key_index: int, key: ApiKey) -> None:
        """Give a worker a new token; if its key had failed, bring its instruments back."""
        with self.lock:
            handle = self.workers[key_index]
            self.keys[key_index] = key
            handle.key = key
            if handle.pipe is not None:
                handle.send(lambda command_id: SetToken(id=command_id, access_token=key.access_token)).wait(
                    self._request_timeout
                )
            if key_index in self.failed_keys:
                self.failed_keys.discard(key_index)
                self._move_home(key_index)

    # -- events ---------------------------------------------------------------------------

    def poll_events(self) -> list[FeedEvent]:
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    def _push_event(self, key_index: int, connection: int, kind: str, data: object, detail: str = "") -> None:
        event = FeedEvent(
            api_key=self.keys[key_index].api_key,
            key_index=key_index,
            connection=connection,
            kind=kind,
            data=data,
            detail=detail,
        )
        self._events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a faulty callback must not stop the monitor
                logger.exception("on_event callback failed")

    # -- the monitor thread ---------------------------------------------------------------

    def _monitor_loop(self) -> None:
        while not self._stopping.is_set():
            by_object: dict[object, tuple[str, WorkerHandle]] = {}
            for handle in self.workers:
                if handle.pipe is not None and handle.process is not None:
                    by_object[handle.pipe] = ("pipe", handle)
                    by_object[handle.process.sentinel] = ("exit", handle)
            if not by_object:
                self._stopping.wait(_MONITOR_PERIOD)
                continue
            try:
                ready = wait(list(by_object), timeout=_MONITOR_PERIOD)
            except (OSError, ValueError):
                continue  # a pipe was closed by stop() or a restart while we waited
            for obj in ready:
                what, handle = by_object[obj]
                if what == "pipe":
                    self._read_pipe(handle)
                elif handle.pipe is not None:
                    self._on_worker_exit(handle)

    def _read_pipe(self, handle: WorkerHandle) -> None:
        pipe = handle.pipe
        try:
            while pipe is not None and pipe.poll():
                message = decode_worker_message(pipe.recv_bytes())
                if isinstance(message, TextEvent):
                    text = parse_text(message.text)
                    self._push_event(handle.key_index, message.connection, text_kind(text), text)
                elif isinstance(message, ConnectionEvent):
                    self._push_event(
                        handle.key_index, message.connection, "connection", message.state, message.detail
                    )
                    if message.state == "auth_failed":
                        self._on_auth_failed(handle.key_index)
                else:
                    handle.resolve(message)
        except (EOFError, OSError):
            pass  # the process sentinel reports the exit

    def _on_worker_exit(self, handle: WorkerHandle) -> None:
        if self._stopping.is_set():
            return  # stop() reaps its workers itself; reaping from two threads races
        handle.discard()
        exitcode = handle.process.exitcode if handle.process is not None else None
        ran_for = time.monotonic() - self._started_at.get(handle.key_index, 0.0)
        delay = 0.0 if ran_for > _STABLE_RUN else restart_delay(handle.restarts)
        logger.error(
            "worker for key index %d exited with code %s after %.1f s; restarting in %.2f s",
            handle.key_index,
            exitcode,
            ran_for,
            delay,
        )
        self._push_event(handle.key_index, -1, "worker", "exited", f"exit code {exitcode}")
        self._jobs.submit(lambda: self._restart(handle), delay)

    def _on_auth_failed(self, key_index: int) -> None:
        if not self._failover or key_index in self.failed_keys:
            return
        self.failed_keys.add(key_index)
        self._jobs.submit(lambda: self._fail_over(key_index))

    # -- jobs ---------------------------------------------------------------------------------

    def _restart(self, handle: WorkerHandle) -> None:
        if self._stopping.is_set():
            return
        try:
            handle.start(self._request_timeout)
        except WorkerError as exc:
            handle.restarts += 1
            delay = restart_delay(handle.restarts)
            logger.error("restarting worker for key index %d failed: %s; next try in %.2f s", handle.key_index, exc, delay)
            self._jobs.submit(lambda: self._restart(handle), delay)
            return
        handle.restarts += 1
        self._started_at[handle.key_index] = time.monotonic()

        with self.lock:
            steps = []
            for connection in range(self.allocation.connections_per_key):
                slot = Slot(handle.key_index, connection)
                by_mode: dict[Mode, list[int]] = {}
                for token, mode in self.allocation.tokens_of(slot).items():
                    by_mode.setdefault(mode, []).append(token)
                steps += [subscribe_step(slot, tokens, mode) for mode, tokens in by_mode.items()]
            try:
                self.execute(steps)
            except WorkerError as exc:
                logger.error("restoring the instruments of key index %d failed: %s", handle.key_index, exc)
        self._push_event(handle.key_index, -1, "worker", "restarted", f"restart {handle.restarts}")

    def _fail_over(self, key_index: int) -> None:
        """Move a failed key's instruments to keys with room; those that do not fit stay."""
        with self.lock:
            if key_index not in self.failed_keys:
                return  # a new token arrived meanwhile
            exclude = frozenset(self.failed_keys)
            tokens = self.allocation.tokens_on_key(key_index)
            moving = tokens[: self.allocation.free(exclude)]
            if moving:
                plan = self.allocation.plan_placement(moving, exclude=exclude)
                try:
                    self.execute(move_steps(plan.slots, self.allocation.slot_of, self.allocation.mode_of))
                except WorkerError as exc:
                    logger.error("moving instruments off key index %d failed: %s", key_index, exc)
                    return
                self.allocation.apply_move(plan)
                for token in moving:
                    self._home.setdefault(token, key_index)

        left = len(tokens) - len(moving)
        detail = f"moved {len(moving)} instruments to other keys"
        if left:
            detail += f"; {left} stay on this key because the other keys have no room"
        logger.warning("key %s failed authentication: %s", self.keys[key_index].api_key, detail)
        self._push_event(key_index, -1, "failover", len(moving), detail)

    def _move_home(self, key_index: int) -> None:
        """Bring back to ``key_index`` the instruments that failover moved away (caller holds the lock)."""
        returning = [token for token, home in self._home.items() if home == key_index and token in self.allocation.slot_of]
        returning = returning[: self.allocation.key_free(key_index)]
        if not returning:
            return
        plan = self.allocation.plan_placement(returning, key_index)
        self.execute(move_steps(plan.slots, self.allocation.slot_of, self.allocation.mode_of))
        self.allocation.apply_move(plan)
        for token in returning:
            del self._home[token]
        self._push_event(key_index, -1, "failover", -len(returning), f"moved {len(returning)} instruments back")

    def forget(self, tokens: Iterable[int]) -> None:
        """Drop failover records of unsubscribed tokens (caller holds the lock)."""
        for token in tokens:
            self._home.pop(token, None)
