"""One WebSocket connection of a worker: handshake, subscriptions, receive loop.

The connection keeps the subscription it should have (instrument -> mode) and sends
it in bulk after every handshake, so a reconnect restores exactly what was there. Each
binary message is decoded straight into slots reserved in the worker's ring and
published as one batch; the code here only moves bytes and calls the decoder.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable

import orjson

from ..parsers import Mode
from ..parsers.decoder import Decoder
from ..ringbuf import RingWriter
from .backoff import Backoff
from .credentials import redact
from .messages import ConnectionEvent, ConnectionSettings, ConnectionStats, Event, TextEvent
from .transport import BinaryHandler, Channel, ChannelClosed, HandshakeRejected, Transport

JournalAppend = Callable[[int, int, int, "bytes | memoryview", bool], None]
"""Receives each raw message: receive time (ns), key index, connection index, payload, is-text flag."""

__all__ = ["ConnectionState", "KiteConnection"]

logger = logging.getLogger(__name__)

_TOKENS_PER_REQUEST = 1000
"""Tokens per subscribe or mode message; keeps each request small (about 8 KB of JSON)."""


class ConnectionState(str, enum.Enum):
    IDLE = "idle"  # no instruments yet, never opened
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"  # waiting before the next attempt
    AUTH_FAILED = "auth_failed"  # HTTP 403: the token is invalid or expired; no more attempts
    FAILED = "failed"  # the reconnect policy's max_attempts ran out
    CLOSED = "closed"  # stopped by the worker


class KiteConnection:
    """A Kite ticker connection that reconnects for as long as it runs.

    ``url`` is called before each handshake, so a token replaced at run time is used
    from the next attempt on. Each binary message is decoded into ``writer``'s ring as
    one batch; ``emit`` receives text messages and state changes. The connections of a
    worker share its writer, which is safe because they run on one event loop and
    each batch is reserved, decoded and committed without an await in between.
    """

    def __init__(
        self,
        index: int,
        key_index: int,
        *,
        transport: Transport,
        url: Callable[[], str],
        secret: Callable[[], str],
        writer: RingWriter,
        emit: Callable[[Event], None],
        settings: ConnectionSettings,
        journal: JournalAppend | None = None,
    ) -> None:
        self.index = index
        self.key_index = key_index
        self.modes: dict[int, Mode] = {}
        self.state = ConnectionState.IDLE
        self._transport = transport
        self._url = url
        self._secret = secret
        self._writer = writer
        self._emit = emit
        self._liveness_timeout = settings.liveness_timeout
        self._connect_timeout = settings.connect_timeout
        self._policy = settings.reconnect
        self._decoder = Decoder(key_index=key_index, connection_index=index)
        self._journal = journal
        self._on_binary: BinaryHandler = _make_binary_handler(self, self._decoder, writer, journal)
        self._backoff = Backoff(settings.reconnect.base, settings.reconnect.cap)
        self._channel: Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_message = 0.0
        self._stale = False
        self._frames = 0
        self._heartbeats = 0
        self._bytes = 0
        self._ticks = 0
        self._text_messages = 0
        self._connects = 0
        self._disconnects = 0

    # -- subscription changes, called by the worker ------------------------------------

    async def subscribe(self, tokens: list[int], mode: Mode) -> None:
        for token in tokens:
            self.modes[token] = mode
        self._ensure_running()
        await self._send_subscription(tokens, mode)

    async def unsubscribe(self, tokens: list[int]) -> None:
        for token in tokens:
            self.modes.pop(token, None)
        if self._channel is not None:
            await self._send_batches("unsubscribe", tokens)

    async def set_mode(self, tokens: list[int], mode: Mode) -> None:
        for token in tokens:
            self.modes[token] = mode
        if self._channel is not None:
            await self._send_batches("mode", tokens, mode)

    def retry_now(self) -> None:
        """Leave AUTH_FAILED or BACKOFF and attempt a handshake at once (after a new token)."""
        if self.state in (ConnectionState.AUTH_FAILED, ConnectionState.FAILED, ConnectionState.BACKOFF):
            self._backoff.reset()
            self._wake.set()
            self._ensure_running()

    async def stop(self) -> None:
        self.state = ConnectionState.CLOSED
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._close_channel()

    def stats(self) -> ConnectionStats:
        decode = self._decoder.stats()
        return ConnectionStats(
            connection=self.index,
            state=self.state.value,
            connected=self.state is ConnectionState.CONNECTED,
            instruments=len(self.modes),
            frames=self._frames,
            heartbeats=self._heartbeats,
            bytes=self._bytes,
            ticks=self._ticks,
            parse_errors=decode.errors,
            text_messages=self._text_messages,
            connects=self._connects,
            disconnects=self._disconnects,
        )

    # -- the connection's life ---------------------------------------------------------

    def _ensure_running(self) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.state is not ConnectionState.CLOSED:
            floor = 0.0
            try:
                await self._connect_and_receive()
            except HandshakeRejected as exc:
                if exc.status == 403:
                    self._set_state(
                        ConnectionState.AUTH_FAILED,
                        "handshake rejected with HTTP 403: the access token is invalid or expired; "
                        "set a new token to reconnect",
                    )
                    await self._wait_for_retry()
                    continue
                if exc.status == 429:
                    floor = self._policy.too_many_requests_delay
                detail = str(exc)
            except ChannelClosed as exc:
                detail = f"connection closed: {exc}"
            except TimeoutError:
                detail = "timed out"
            except OSError as exc:
                detail = f"network error: {exc.strerror or exc}"
            except Exception as exc:  # noqa: BLE001 - any failure of one connection leads to a retry
                # No traceback: some exceptions quote the URL, which carries the token.
                detail = f"unexpected {type(exc).__name__}: {redact(str(exc), self._secret())}"
            finally:
                await self._close_channel()

            if self.state is ConnectionState.CLOSED:
                return
            if self._stale:
                detail = f"no message for more than {self._liveness_timeout:g} s"
                self._stale = False
            limit = self._policy.max_attempts
            if limit is not None and self._backoff.attempt >= limit:
                self._set_state(ConnectionState.FAILED, f"{detail}; gave up after {limit} attempts")
                await self._wait_for_retry()
                continue
            delay = self._backoff.next_delay(floor)
            self._set_state(ConnectionState.BACKOFF, f"{detail}; retrying in {delay:.2f} s")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def _wait_for_retry(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    async def _connect_and_receive(self) -> None:
        self._set_state(ConnectionState.CONNECTING, "opening handshake")
        self._channel = await self._transport.open(self._url(), timeout=self._connect_timeout)
        self._connects += 1
        self._backoff.reset()
        self._last_message = time.monotonic()
        self._set_state(ConnectionState.CONNECTED, f"connected, restoring {len(self.modes)} instruments")

        await self._restore_subscription()
        watchdog = asyncio.get_running_loop().create_task(self._watch_liveness())
        try:
            await self._receive_loop(self._channel)
        finally:
            watchdog.cancel()
            self._disconnects += 1

    async def _receive_loop(self, channel: Channel) -> None:
        await channel.deliver(self._on_binary, self._on_text)

    def _on_text(self, message: str) -> None:
        self._last_message = time.monotonic()
        self._text_messages += 1
        if self._journal is not None:
            self._journal(time.time_ns(), self.key_index, self.index, message.encode(), True)
        self._emit(TextEvent(connection=self.index, text=message))

    async def _watch_liveness(self) -> None:
        # Judged on any received message, heartbeats included, so a peer that keeps the
        # TCP connection open but sends nothing is found without relying on pings.
        period = min(1.0, self._liveness_timeout / 2)
        while True:
            await asyncio.sleep(period)
            silent = time.monotonic() - self._last_message
            if silent > self._liveness_timeout:
                logger.warning(
                    "key %d connection %d received nothing for %.1f s; reconnecting",
                    self.key_index,
                    self.index,
                    silent,
                )
                self._stale = True
                await self._close_channel()
                return

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            try:
                await channel.close()
            except Exception:  # noqa: BLE001 - the channel is being discarded anyway
                logger.debug("closing key %d connection %d failed", self.key_index, self.index, exc_info=True)

    def _set_state(self, state: ConnectionState, detail: str) -> None:
        if state is self.state and state is not ConnectionState.BACKOFF:
            return
        self.state = state
        level = logging.INFO if state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING) else logging.WARNING
        logger.log(level, "key %d connection %d %s: %s", self.key_index, self.index, state.value, detail)
        self._emit(ConnectionEvent(connection=self.index, state=state.value, detail=detail))

    # -- requests to the server --------------------------------------------------------

    async def _restore_subscription(self) -> None:
        by_mode: dict[Mode, list[int]] = {}
        for token, mode in self.modes.items():
            by_mode.setdefault(mode, []).append(token)
        for mode, tokens in by_mode.items():
            await self._send_subscription(tokens, mode)

    async def _send_subscription(self, tokens: list[int], mode: Mode) -> None:
        if self._channel is None:
            return  # sent by _restore_subscription after the next handshake
        await self._send_batches("subscribe", tokens)
        if mode is not Mode.QUOTE:  # quote is the server's default after subscribe
            await self._send_batches("mode", tokens, mode)

    async def _send_batches(self, action: str, tokens: Iterable[int], mode: Mode | None = None) -> None:
        channel = self._channel
        if channel is None:
            return
        tokens = list(tokens)
        for start in range(0, len(tokens), _TOKENS_PER_REQUEST):
            chunk = tokens[start : start + _TOKENS_PER_REQUEST]
            value: object = chunk if mode is None else [mode.wire_name, chunk]
            try:
                await channel.send(orjson.dumps({"a": action, "v": value}).decode())
            except ChannelClosed:
                # The receive loop detects the closure and reconnects. The handshake after it
                # restores the whole subscription, this request included.
                return


# -- the per-message hot path ---------------------------------------------------------------


def _make_binary_handler(
    connection: KiteConnection, decoder: Decoder, writer: RingWriter, journal: JournalAppend | None = None
) -> BinaryHandler:
    """Return the function called with every binary message of ``connection``.

    Each message's ticks are decoded into ring slots reserved for them and committed as
    one batch. At the ring's end, where the slots would wrap around, the message is
    decoded into a new array that publish() copies in two parts.
    """
    # Everything the handler uses is bound here, so that a message costs no global or
    # attribute lookups beyond the counters.
    reserve, commit, publish = writer.reserve, writer.commit, writer.publish
    decode, decode_into = decoder.decode, decoder.decode_into_unchecked
    time_ns, monotonic = time.time_ns, time.monotonic
    key_index, connection_index = connection.key_index, connection.index

    def on_binary(message: bytes | memoryview) -> None:
        connection._last_message = monotonic()
        if journal is not None:
            # Before decoding, so that a message the decoder rejects is kept too.
            journal(time_ns(), key_index, connection_index, message, False)
        size = len(message)
        connection._bytes += size
        if size < 2:
            connection._heartbeats += 1
            return
        connection._frames += 1

        if type(message) is memoryview and message.format != "B":
            message = message.cast("B")
        # Decoder.max_ticks, inlined: the header's count, capped by what the bytes can hold
        # (the shortest packet is 8 bytes after its 2-byte length prefix).
        capacity = min((message[0] << 8) | message[1], (size - 2) // 10)
        if not capacity:
            decode(message, time_ns())  # counts the message's damaged packets
            return
        slots = reserve(capacity)
        if slots is None:
            ticks = decode(message, time_ns())
            count = len(ticks)
            if count:
                publish(ticks)
        else:
            try:
                count = decode_into(message, slots, time_ns())
            except BaseException:
                # Nothing is published. NOTE: a decoder that failed after writing
                # some slots leaves records that readers may count as intact.
                commit(0)
                raise
            commit(count)
        connection._ticks += count

    return on_binary
