"""The supervisor's handle on one worker process and its command pipe."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

from ..errors import WorkerError
from .credentials import ApiKey
from .messages import Command, Configure, ConnectionSettings, Done, Failed, Reply, Stop, decode_worker_message, encode
from .worker import run_worker

__all__ = ["WorkerHandle", "PendingReply"]

logger = logging.getLogger(__name__)


class PendingReply:
    """A reply that the monitor thread fills in when it arrives."""

    __slots__ = ("_event", "reply", "error")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reply: Reply | None = None
        self.error: str | None = None

    def resolve(self, reply: Reply) -> None:
        self.reply = reply
        self._event.set()

    def fail(self, error: str) -> None:
        self.error = error
        self._event.set()

    def wait(self, timeout: float) -> Reply:
        if not self._event.wait(timeout):
            raise WorkerError(f"worker did not reply within {timeout} s")
        if self.error is not None:
            raise WorkerError(self.error)
        assert self.reply is not None
        if isinstance(self.reply, Failed):
            raise WorkerError(self.reply.message)
        return self.reply


class WorkerHandle:
    """One worker process: start, send commands, match replies, stop."""

    def __init__(
        self,
        key_index: int,
        key: ApiKey,
        *,
        context: BaseContext,
        url: str,
        ring_name: str,
        settings: ConnectionSettings,
    ) -> None:
        self.key_index = key_index
        self.key = key
        self.restarts = 0
        self.process: Any = None
        self.pipe: Connection | None = None
        self._context = context
        self._url = url
        self._ring_name = ring_name
        self._settings = settings
        self._next_id = 1
        self._pending: dict[int, PendingReply] = {}
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def start(self, timeout: float) -> None:
        """Start the process and configure it; raises WorkerError if it does not confirm in time."""
        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        process = self._context.Process(
            target=run_worker,
            args=(child_end, logging.getLogger("kitefeed").getEffectiveLevel()),
            name=f"kitefeed-worker-{self.key_index}",
            daemon=True,
        )
        process.start()
        # The child has its own copy; closing ours lets the worker see EOF if we die.
        child_end.close()

        configure = Configure(
            id=0,
            key_index=self.key_index,
            api_key=self.key.api_key,
            access_token=self.key.access_token,
            url=self._url,
            ring_name=self._ring_name,
            settings=self._settings,
        )
        try:
            parent_end.send_bytes(encode(configure))
            if not parent_end.poll(timeout):
                raise WorkerError(f"worker for key index {self.key_index} did not start within {timeout} s")
            reply = decode_worker_message(parent_end.recv_bytes())
        except (EOFError, OSError) as exc:
            process.join(1)
            parent_end.close()
            raise WorkerError(
                f"worker for key index {self.key_index} exited during start (exit code {process.exitcode})"
            ) from exc
        except WorkerError:
            process.kill()
            process.join(1)
            parent_end.close()
            raise
        if not isinstance(reply, Done):
            process.join(1)
            parent_end.close()
            message = reply.message if isinstance(reply, Failed) else repr(reply)
            raise WorkerError(f"worker for key index {self.key_index} failed to start: {message}")

        self.process = process
        self.pipe = parent_end
        logger.info("started worker for key index %d (%s), pid %d", self.key_index, self.key.api_key, process.pid)

    def send(self, make: Any) -> PendingReply:
        """Send the command ``make(id)`` and return the pending reply to wait on."""
        pending = PendingReply()
        with self._lock:
            if self.pipe is None:
                pending.fail(f"worker for key index {self.key_index} is not running")
                return pending
            command_id = self._next_id
            self._next_id += 1
            self._pending[command_id] = pending
            command: Command = make(command_id)
            try:
                self.pipe.send_bytes(encode(command))
            except OSError as exc:
                del self._pending[command_id]
                pending.fail(f"worker for key index {self.key_index} is gone: {exc}")
        return pending

    def resolve(self, reply: Reply) -> None:
        with self._lock:
            pending = self._pending.pop(reply.id, None)
        if pending is not None:
            pending.resolve(reply)

    def fail_pending(self, error: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for waiter in pending.values():
            waiter.fail(error)

    def discard(self) -> None:
        """Forget a dead process: close the pipe and fail every waiting request."""
        self.fail_pending(f"worker for key index {self.key_index} exited")
        with self._lock:
            pipe, self.pipe = self.pipe, None
        if pipe is not None:
            pipe.close()
        if self.process is not None:
            self.process.join(0.5)

    def stop(self, timeout: float) -> None:
        """Stop the process: politely, then with SIGTERM, then SIGKILL."""
        process = self.process
        if process is None:
            return
        self.send(lambda command_id: Stop(id=command_id))
        process.join(timeout)
        if process.is_alive():
            logger.warning("worker for key index %d did not stop in %.1f s; terminating", self.key_index, timeout)
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join(1.0)
        self.discard()
        process.close()
        self.process = None
