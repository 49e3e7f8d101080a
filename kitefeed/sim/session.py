"""One open client connection: its subscriptions, its requests and its queue of outgoing messages."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from ..parsers import HEARTBEAT, Mode, encode_frame
from .faults import ConnectionFaults
from .market import Market
from .protocol import MAX_PACKETS_PER_FRAME, damaged_message, encode_frames, kinds_for, parse_request, too_many_instruments_message

__all__ = ["ConnectionInfo", "Session"]

logger = logging.getLogger(__name__)

# NOTE: how the real server treats a client that reads too slowly is not documented.
# The simulator drops new messages while the queue is full and counts them.
OUTBOX_LIMIT = 64
"""Messages queued for one connection before new ones are dropped."""

GARBAGE_GOOD_PACKETS = 3
"""Subscribed instruments whose packets go with the damaged one in a garbage message."""

_MAX_COUNT = 0xFFFF  # max packets that the 2-byte count of a message can declare


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    """Snapshot of one open connection's subscriptions and counters.

    Packet counts include every packet queued for sending (snapshots after a request, push
    cycles and the good packets of garbage messages). Frame and byte counts include only
    messages already handed to the WebSocket connection. ``silenced`` counts messages
    discarded because the connection was silenced. ``socket_writes`` counts writes to the
    TCP transport (one per WebSocket frame, or one per chunk with slow writes on), and
    ``pongs_dropped`` the pongs withheld while silenced.
    """

    connection_id: int
    api_key: str
    subscribed: int
    modes: Mapping[int, Mode]
    packets_sent: int
    packets_by_token: Mapping[int, int]
    frames_sent: int
    bytes_sent: int
    heartbeats_sent: int
    texts_sent: int
    ignored_requests: int
    dropped: int
    silenced: int = 0
    socket_writes: int = 0
    pongs_dropped: int = 0


class Session:
    """Subscriptions and counters of one connection; used only from the simulator's event loop."""

    def __init__(
        self,
        connection_id: int,
        api_key: str,
        market: Market,
        *,
        max_instruments: int,
        replay: Sequence[bytes] = (),
        faults: ConnectionFaults | None = None,
    ) -> None:
        """``faults`` is shared with the connection's transport and read before each message."""
        self.connection_id = connection_id
        self.api_key = api_key
        self._market = market
        self._max_instruments = max_instruments
        self._replay = replay
        self._replay_position = 0
        self._outbox: asyncio.Queue[bytes | str] = asyncio.Queue(OUTBOX_LIMIT)
        self.faults = faults if faults is not None else ConnectionFaults()

        self._modes: dict[int, Mode] = {}
        self._token_rows: dict[int, int] = {}
        self._stale = False
        self._rows = np.zeros(0, dtype=np.int64)
        self._kinds = np.zeros(0, dtype=np.uint8)
        self._mode_codes = np.zeros(0, dtype=np.uint8)

        self._sent_by_row = np.zeros(0, dtype=np.int64)
        self._packets = 0
        self._frames = 0
        self._bytes = 0
        self._heartbeats = 0
        self._texts = 0
        self._ignored = 0
        self._dropped = 0
        self._silenced = 0

    # ---- requests

    def handle_message(self, message: str | bytes) -> None:
        """Apply one client message; see :func:`~kitefeed.sim.protocol.parse_request` for what is ignored."""
        request = parse_request(message) if isinstance(message, str) else None
        if request is None:
            self._ignored += 1
            return
        if request.action == "unsubscribe":
            self._unsubscribe(request.tokens)
        else:
            self._subscribe(request.tokens, request.mode)

    def _subscribe(self, tokens: list[int], mode: Mode | None) -> None:
        """Subscribe ``tokens`` in ``mode`` and queue their current state.

        ``mode`` None is a plain subscribe, which sets (or resets) the mode to quote. New
        tokens beyond the connection's limit are rejected with one error text message.
        """
        # NOTE: Kite staff wrote on the developer forum that duplicate tokens count toward the
        # real server's limit. Here a token already subscribed, or repeated within a request,
        # takes no new slot.
        requested = list(dict.fromkeys(tokens))
        room = self._max_instruments - len(self._modes)
        accepted: list[int] = []
        added: list[int] = []
        rejected = 0
        for token in requested:
            if token in self._modes:
                accepted.append(token)
            elif len(added) < room:
                added.append(token)
                accepted.append(token)
            else:
                rejected += 1

        if added:
            rows = self._market.rows_for(added)
            self._market.subscribers[rows] += 1
            self._token_rows.update(zip(added, rows.tolist()))
        new_mode = Mode.QUOTE if mode is None else mode
        for token in accepted:
            self._modes[token] = new_mode
        self._stale = True

        if rejected:
            logger.info(
                "connection %d of api_key %s: rejected %d instruments over the limit of %d",
                self.connection_id, self.api_key, rejected, self._max_instruments,
            )
            self._enqueue(too_many_instruments_message(self._max_instruments))
        if accepted:
            rows = np.array([self._token_rows[token] for token in accepted], dtype=np.int64)
            modes = np.full(len(accepted), new_mode, dtype=np.uint8)
            self._send_ticks(rows, modes)

    def _unsubscribe(self, tokens: list[int]) -> None:
        removed = [token for token in dict.fromkeys(tokens) if token in self._modes]
        if not removed:
            return
        rows = np.array([self._token_rows.pop(token) for token in removed], dtype=np.int64)
        for token in removed:
            del self._modes[token]
        self._market.subscribers[rows] -= 1
        self._stale = True

    def release(self) -> None:
        """Drop every subscription from the market's counts; called once when the connection ends."""
        self._unsubscribe(list(self._modes))

    # ---- outgoing messages

    def _refresh(self) -> None:
        """Rebuild the subscription arrays that push cycles read, after a request changed them."""
        self._rows = np.fromiter(self._token_rows.values(), dtype=np.int64, count=len(self._token_rows))
        tokens = self._token_rows.keys()
        self._mode_codes = np.fromiter((self._modes[t] for t in tokens), dtype=np.uint8, count=len(tokens))
        self._kinds = kinds_for(self._market.state["segment"][self._rows], self._mode_codes)
        self._stale = False

    def push(self, ticked: np.ndarray) -> None:
        """Queue one frame with the subscribed instruments whose row is True in ``ticked``.

        ``ticked`` is a bool array with one entry per market row, at least as long as the market.
        """
        if self._stale:
            self._refresh()
        if self._rows.size == 0:
            return
        due = ticked[self._rows]
        if due.any():
            self._send_ticks(self._rows[due], self._mode_codes[due], self._kinds[due])

    def push_replay(self) -> None:
        """Queue the next replay frame, going back to the first after the last."""
        if self._replay:
            self._enqueue(self._replay[self._replay_position % len(self._replay)])
            self._replay_position += 1

    def send_heartbeat(self) -> None:
        self._enqueue(HEARTBEAT)

    def send_text(self, text: str) -> None:
        self._enqueue(text)

    def send_snapshot(self) -> int:
        """Queue one message with the state of every subscribed instrument in its mode.

        Returns the packets queued: 0 when nothing is subscribed or the message was
        dropped. More than 65,535 instruments, the most a message can count, take more
        than one message.
        """
        if self._stale:
            self._refresh()
        if self._rows.size == 0:
            return 0
        sent = self._send_ticks(self._rows, self._mode_codes, self._kinds, limit=_MAX_COUNT)
        return int(self._rows.size) if sent else 0

    def send_garbage(self, kind: str) -> int:
        """Queue one binary message with a damaged packet (see :func:`damaged_message`).

        The message also carries the state of up to :data:`GARBAGE_GOOD_PACKETS` subscribed
        instruments. Returns how many, or 0 when the message was dropped.
        """
        if self._stale:
            self._refresh()
        rows = self._rows[:GARBAGE_GOOD_PACKETS]
        ticks = self._market.state[rows]
        ticks["kind"] = self._kinds[:GARBAGE_GOOD_PACKETS]
        ticks["mode"] = self._mode_codes[:GARBAGE_GOOD_PACKETS]
        good = encode_frame(ticks)[2:]
        if not self._enqueue(damaged_message(good, len(rows), kind)):
            return 0
        self._count_sent(rows)
        return int(rows.size)

    def _send_ticks(
        self,
        rows: np.ndarray,
        modes: np.ndarray,
        kinds: np.ndarray | None = None,
        limit: int = MAX_PACKETS_PER_FRAME,
    ) -> bool:
        """Queue the market state of ``rows`` (unique) in ``modes`` as binary frames of at most
        ``limit`` packets. Return whether every frame was queued."""
        market = self._market
        ticks = market.state[rows]
        if kinds is None:
            kinds = kinds_for(ticks["segment"], modes)
        ticks["kind"] = kinds
        ticks["mode"] = modes
        queued = [self._enqueue(frame) for frame in encode_frames(ticks, limit)]
        if all(queued):
            self._count_sent(rows)
        return all(queued)

    def _count_sent(self, rows: np.ndarray) -> None:
        """Add one packet for each of ``rows`` (unique market rows) to the counters."""
        market = self._market

        # Per-token counts are arrays indexed by market row, so a cycle costs one
        # vectorised add whatever the number of packets.
        if len(self._sent_by_row) < len(market):
            grown = np.zeros(len(market), dtype=np.int64)
            grown[: len(self._sent_by_row)] = self._sent_by_row
            self._sent_by_row = grown
        self._sent_by_row[rows] += 1
        market.packets_sent[rows] += 1
        self._packets += len(rows)

    def _enqueue(self, message: bytes | str) -> bool:
        if self.faults.silence.enabled:
            self._silenced += 1
            return False
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            if self._dropped == 0:
                logger.warning(
                    "connection %d of api_key %s reads too slowly: dropping messages",
                    self.connection_id, self.api_key,
                )
            self._dropped += 1
            return False
        return True

    @property
    def backlog(self) -> int:
        """Messages queued and not yet handed to ``send``."""
        return self._outbox.qsize()

    async def write(self, send: Callable[[bytes | str], Awaitable[None]]) -> None:
        """Send queued messages with ``send`` (the connection's ``send`` coroutine) until cancelled."""
        while True:
            message = await self._outbox.get()
            if self.faults.silence.enabled:
                self._silenced += 1
                continue
            await send(message)
            self._bytes += len(message)
            if isinstance(message, str):
                self._texts += 1
            elif message == HEARTBEAT:
                self._heartbeats += 1
            else:
                self._frames += 1

    def info(self) -> ConnectionInfo:
        """Return a snapshot of this connection's subscriptions and counters."""
        tokens = self._market.state["instrument_token"]
        sent_rows = np.flatnonzero(self._sent_by_row)
        by_token = dict(zip(tokens[sent_rows].tolist(), self._sent_by_row[sent_rows].tolist()))
        return ConnectionInfo(
            connection_id=self.connection_id,
            api_key=self.api_key,
            subscribed=len(self._modes),
            modes=MappingProxyType(dict(self._modes)),
            packets_sent=self._packets,
            packets_by_token=MappingProxyType(by_token),
            frames_sent=self._frames,
            bytes_sent=self._bytes,
            heartbeats_sent=self._heartbeats,
            texts_sent=self._texts,
            ignored_requests=self._ignored,
            dropped=self._dropped,
            silenced=self._silenced,
        )
