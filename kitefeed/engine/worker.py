"""The worker process of one API key: a uvloop event loop with up to 3 connections.

The supervisor starts :func:`run_worker` in a new process (spawn or forkserver) with one
end of a pipe. The first command on the pipe is :class:`Configure`, which carries the
access token, so the token never appears in the process's arguments. The worker exits
when it receives :class:`Stop`, when the pipe closes, or when its parent process dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any
from multiprocessing.connection import Connection

import uvloop

from ..parsers import Mode
from ..ringbuf import Ring
from .allocation import MAX_CONNECTIONS_PER_KEY
from .connection import KiteConnection
from .messages import (
    Command,
    Configure,
    Done,
    Event,
    Failed,
    GetStats,
    SetMode,
    SetToken,
    StatsReply,
    Stop,
    Subscribe,
    Unsubscribe,
    decode_command,
    encode,
)
from .transport import build_url, open_transport

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)

_HOUSEKEEPING_PERIOD = 0.25
"""Seconds between liveness stamps in the ring header and checks that the parent lives."""

_ORPHAN_EXIT_SECONDS = 1.5
"""Maximum time a worker whose supervisor died spends stopping before it exits anyway."""


class Worker:
    def __init__(self, pipe: Connection, config: Configure) -> None:
        self._pipe = pipe
        self._config = config
        self._access_token = config.access_token
        self._parent_pid = os.getppid()
        self._stopped = asyncio.Event()
        self._ring = Ring.attach(config.ring_name, writable=True)
        self._writer = self._ring.writer()
        self._journal = self._open_journal(config)
        self._journal_failures = 0
        transport = open_transport(config.settings.transport)
        self._connections = [
            KiteConnection(
                index,
                config.key_index,
                transport=transport,
                url=self._url,
                secret=lambda: self._access_token,
                writer=self._writer,
                emit=self._emit,
                settings=config.settings,
                journal=None if self._journal is None else self._append_to_journal,
            )
            for index in range(MAX_CONNECTIONS_PER_KEY)
        ]

    @staticmethod
    def _open_journal(config: Configure) -> Any:
        if config.settings.journal_dir is None:
            return None
        # Imported here: the record package builds on the engine, not the other way round.
        from ..record.journal import JournalWriter

        # No fsync: it would stall the event loop for milliseconds. Messages reach the
        # operating system within a second, so only a machine crash loses the last ones.
        return JournalWriter(
            config.settings.journal_dir,
            prefix=f"{config.settings.feed_name or 'feed'}-key{config.key_index}",
            metadata={"feed": config.settings.feed_name, "key_index": config.key_index, "api_key": config.api_key},
            fsync=False,
        )

    def _append_to_journal(
        self, recv_time_ns: int, key_index: int, connection: int, payload: bytes | memoryview, is_text: bool
    ) -> None:
        # A full disk must not stop the feed: the failure is logged once and counted.
        try:
            self._journal.append(recv_time_ns, key_index, connection, payload, is_text)
        except OSError as exc:
            self._journal_failures += 1
            if self._journal_failures == 1:
                logger.error(
                    "worker for key %d: writing the journal failed (%s); messages are no longer journaled "
                    "until it works again, and failures are counted",
                    key_index,
                    exc,
                )

    def _url(self) -> str:
        return build_url(self._config.url, self._config.api_key, self._access_token)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._pipe.fileno(), self._on_pipe_readable)
        loop.add_signal_handler(signal.SIGTERM, self._stopped.set)
        housekeeping = loop.create_task(self._housekeeping())
        logger.info("worker for key %d started (pid %d)", self._config.key_index, os.getpid())
        try:
            await self._stopped.wait()
        finally:
            loop.remove_reader(self._pipe.fileno())
            housekeeping.cancel()
            # Concurrently, because each close may wait up to the transport's close timeout.
            await asyncio.gather(*(connection.stop() for connection in self._connections))
            if self._journal is not None:
                self._journal.close()
            self._ring.close()
            logger.info("worker for key %d stopped", self._config.key_index)

    async def _housekeeping(self) -> None:
        while True:
            self._writer.touch()
            if os.getppid() != self._parent_pid:
                self._orphaned("lost its supervisor")
                return
            await asyncio.sleep(_HOUSEKEEPING_PERIOD)

    def _on_pipe_readable(self) -> None:
        try:
            while self._pipe.poll():
                data = self._pipe.recv_bytes()
                asyncio.get_running_loop().create_task(self._handle(decode_command(data)))
        except (EOFError, OSError):
            self._orphaned("command pipe closed")

    def _orphaned(self, reason: str) -> None:
        if self._stopped.is_set():
            return
        logger.error("worker for key %d: %s; exiting", self._config.key_index, reason)
        self._stopped.set()
        # Nobody waits for a clean stop any more, so the process ends within
        # _ORPHAN_EXIT_SECONDS even if closing its connections hangs.
        timer = threading.Timer(_ORPHAN_EXIT_SECONDS, os._exit, args=(1,))
        timer.daemon = True
        timer.start()

    async def _handle(self, command: Command) -> None:
        try:
            reply = await self._execute(command)
        except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which raises it
            logger.exception("worker for key %d failed on %s", self._config.key_index, type(command).__name__)
            reply = Failed(id=command.id, message=f"{type(exc).__name__}: {exc}")
        self._send(reply)

    async def _execute(self, command: Command) -> Done | Failed | StatsReply:
        if isinstance(command, Subscribe):
            await self._connections[command.connection].subscribe(command.tokens, Mode(command.mode))
        elif isinstance(command, Unsubscribe):
            await self._connections[command.connection].unsubscribe(command.tokens)
        elif isinstance(command, SetMode):
            await self._connections[command.connection].set_mode(command.tokens, Mode(command.mode))
        elif isinstance(command, SetToken):
            self._access_token = command.access_token
            for connection in self._connections:
                connection.retry_now()
        elif isinstance(command, GetStats):
            return StatsReply(
                id=command.id,
                ring_position=self._writer.cursor,
                connections=[connection.stats() for connection in self._connections],
                journal_failures=self._journal_failures,
            )
        elif isinstance(command, Stop):
            self._stopped.set()
        else:
            return Failed(id=command.id, message=f"unexpected command {type(command).__name__}")
        return Done(id=command.id)

    def _emit(self, event: Event) -> None:
        self._send(event)

    def _send(self, message: object) -> None:
        try:
            self._pipe.send_bytes(encode(message))  # type: ignore[arg-type]
        except (BrokenPipeError, OSError):
            self._stopped.set()


def run_worker(pipe: Connection, log_level: int) -> None:
    """Entry point of a worker process: wait for Configure, then run until stopped."""
    # Ctrl-C in a terminal reaches the whole process group; the supervisor decides
    # when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")

    try:
        config = decode_command(pipe.recv_bytes())
    except (EOFError, OSError):
        return
    if not isinstance(config, Configure):
        pipe.send_bytes(encode(Failed(id=config.id, message="the first command must be Configure")))
        return

    try:
        worker = Worker(pipe, config)
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which raises it
        pipe.send_bytes(encode(Failed(id=config.id, message=f"{type(exc).__name__}: {exc}")))
        return
    pipe.send_bytes(encode(Done(id=config.id)))

    uvloop.run(worker.run())
