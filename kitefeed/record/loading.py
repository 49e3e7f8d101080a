"""Loading recorded ticks for replay: from Parquet files, or decoded again from journals."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..errors import InvalidRequestError
from ..parsers import TICK_DTYPE, DecodeStats, Decoder
from .journal import JOURNAL_SUFFIX, JournalReadStats, read_journal, read_metadata
from .parquet import PARQUET_SUFFIX, read_parquet_metadata, read_ticks

__all__ = ["JournalDecodeStats", "Recording", "decode_journal", "load_recording"]

logger = logging.getLogger(__name__)


class JournalDecodeStats(msgspec.Struct, frozen=True):
    """Counters of :func:`decode_journal`."""

    journal: JournalReadStats
    """Files, messages and damaged tails read."""
    text_messages: int
    """Text messages, which carry no ticks and are skipped."""
    decode: DecodeStats
    """Decoder counters summed over every (key, connection); skipped packets are in ``decode.errors``."""


class Recording(msgspec.Struct, frozen=True):
    """Ticks loaded from recorded files, in recorded order, with the API key of each key index."""

    ticks: Any
    """A new 1-D array of :data:`TICK_DTYPE`."""
    api_keys: list[str]
    """API key of each key index; a placeholder ``key_<i>`` where the files store none."""


def decode_journal(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[np.ndarray[Any, Any], JournalDecodeStats]:
    """Decode the binary messages of journal files into ticks, as the feed's workers did.

    Each (key, connection) gets its own :class:`~kitefeed.parsers.Decoder`, so every tick
    carries the ``key_index``, ``connection_index`` and ``recv_time`` of its message.
    Returns a new 1-D array of :data:`TICK_DTYPE` in journal order and the counters.
    """
    read_stats = JournalReadStats()
    decoders: dict[tuple[int, int], Decoder] = {}
    parts: list[np.ndarray[Any, Any]] = []
    text_messages = 0
    for message in read_journal(list(paths), read_stats):
        if message.is_text:
            text_messages += 1
            continue
        route = (message.key_index, message.connection)
        decoder = decoders.get(route)
        if decoder is None:
            decoder = decoders[route] = Decoder(key_index=message.key_index, connection_index=message.connection)
        ticks = decoder.decode(message.payload, message.recv_time_ns)
        if len(ticks):
            parts.append(ticks)

    totals = dict.fromkeys(DecodeStats.__struct_fields__, 0)
    for decoder in decoders.values():
        for name, value in msgspec.structs.asdict(decoder.stats()).items():
            totals[name] += value
    ticks = np.concatenate(parts) if parts else np.empty(0, dtype=TICK_DTYPE)
    return ticks, JournalDecodeStats(read_stats, text_messages, DecodeStats(**totals))


def load_recording(paths: Sequence[str | os.PathLike[str]]) -> Recording:
    """Load ``.parquet`` and ``.kfj`` files, in the order given, into one :class:`Recording`.

    Raises InvalidRequestError for a file of another suffix or contents, and OSError
    when a file cannot be read.
    """
    if not paths:
        raise InvalidRequestError("no files to load: pass .parquet or .kfj files written by kitefeed record")
    parts: list[np.ndarray[Any, Any]] = []
    named_keys: list[str] = []
    for path in map(Path, paths):
        if path.suffix == PARQUET_SUFFIX:
            parts.append(read_ticks([path]))
            metadata = read_parquet_metadata(path)
        elif path.suffix == JOURNAL_SUFFIX:
            ticks, stats = decode_journal([path])
            if stats.journal.damaged_tails or stats.decode.errors:
                logger.warning(
                    "journal %s: %d damaged tail bytes, %d packets skipped",
                    path,
                    stats.journal.damaged_bytes,
                    stats.decode.errors,
                )
            parts.append(ticks)
            metadata = read_metadata(path)
        else:
            raise InvalidRequestError(f"invalid file {str(path)!r}: expected a .parquet or .kfj file")
        keys = metadata.get("api_keys")
        if isinstance(keys, list) and len(keys) > len(named_keys):
            named_keys = [str(key) for key in keys]

    ticks = np.concatenate(parts) if parts else np.empty(0, dtype=TICK_DTYPE)
    key_count = max(len(named_keys), int(ticks["key_index"].max()) + 1 if len(ticks) else 1)
    api_keys = [named_keys[index] if index < len(named_keys) else f"key_{index}" for index in range(key_count)]
    return Recording(ticks=ticks, api_keys=api_keys)
