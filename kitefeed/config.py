"""The TOML configuration of ``kitefeed run``: keys, instruments, feed options, metrics.

Access tokens are never written in the file: each key names an environment variable or
a file that contains its token. :func:`load_config` validates everything at load, and each
mistake is reported as a :class:`ConfigError` that names the file, the place in it and
the fix.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Literal

import msgspec

from .engine import ApiKey
from .errors import InvalidRequestError
from .parsers import Mode

__all__ = ["ConfigError", "FeedConfig", "KeyConfig", "InstrumentsConfig", "MetricsConfig", "RunConfig", "load_config"]


class ConfigError(InvalidRequestError):
    """Raised when a configuration file cannot be read or is invalid; the message names the place."""


class KeyConfig(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str
    access_token_env: str | None = None  # name of an environment variable holding the token
    access_token_file: str | None = None  # path of a file holding the token (relative to the config file)


class CsvSource(msgspec.Struct, forbid_unknown_fields=True):
    """Instruments from a CSV file in Kite's instrument-master format (column ``instrument_token``)."""

    path: str
    mode: Literal["ltp", "quote", "full"] = "quote"
    exchange: list[str] = []  # keep rows whose ``exchange`` column is one of these (all if empty)
    segment: list[str] = []  # keep rows whose ``segment`` column is one of these (all if empty)
    limit: int | None = None  # keep at most this many rows, in file order


class InstrumentsConfig(msgspec.Struct, forbid_unknown_fields=True):
    ltp: list[int] = []
    quote: list[int] = []
    full: list[int] = []
    csv: list[CsvSource] = []


class FeedConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: str = "kitefeed"
    url: str = "wss://ws.kite.trade"
    ring_capacity: int = 1 << 18
    allocation: Literal["round_robin", "least_loaded"] = "round_robin"
    instruments_per_connection: int = 3000
    liveness_timeout: float = 5.0
    failover: bool = True
    transport: Literal["picows", "websockets"] = "picows"
    journal_dir: str | None = None  # raw-message journals, relative to the config file; none when absent


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True):
    port: int | None = None  # no endpoint when absent
    host: Literal["127.0.0.1", "::1"] = "127.0.0.1"


class RunConfig(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[KeyConfig]
    feed: FeedConfig = msgspec.field(default_factory=FeedConfig)
    instruments: InstrumentsConfig = msgspec.field(default_factory=InstrumentsConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)

    def api_keys(self, base: Path, source: str = "the configuration") -> list[ApiKey]:
        """Read each key's access token from its environment variable or file."""
        keys = []
        for index, key in enumerate(self.keys):
            place = f"{source} at keys[{index}]"
            if (key.access_token_env is None) == (key.access_token_file is None):
                raise ConfigError(
                    f"invalid key {key.api_key!r} in {place}: set exactly one of access_token_env "
                    "or access_token_file (tokens are never written in the file itself)"
                )
            if key.access_token_env is not None:
                token = os.environ.get(key.access_token_env, "")
                if not token:
                    raise ConfigError(
                        f"missing access token for key {key.api_key!r} ({place}): environment variable "
                        f"{key.access_token_env} is not set or empty"
                    )
            else:
                path = base / str(key.access_token_file)
                try:
                    token = path.read_text().strip()
                except OSError as exc:
                    raise ConfigError(
                        f"missing access token for key {key.api_key!r} ({place}): cannot read {path}: {exc.strerror}"
                    ) from None
            try:
                keys.append(ApiKey(key.api_key, token))
            except InvalidRequestError as exc:
                raise ConfigError(f"{exc} ({place})") from None
        return keys

    def tokens_by_mode(self, base: Path, source: str = "the configuration") -> dict[Mode, list[int]]:
        """Return every configured instrument token by mode, CSV files included; raise if a token repeats."""
        result: dict[Mode, list[int]] = {Mode.LTP: [], Mode.QUOTE: [], Mode.FULL: []}
        seen: dict[int, str] = {}

        def add(token: int, mode: Mode, place: str) -> None:
            if not 0 < token <= 0xFFFFFFFF:
                raise ConfigError(f"invalid instrument token {token} in {source} at {place}: expected 1 to 4294967295")
            if token in seen:
                raise ConfigError(
                    f"instrument token {token} appears twice in {source}, at {seen[token]} and {place}; keep one"
                )
            seen[token] = place
            result[mode].append(token)

        lists = {Mode.LTP: self.instruments.ltp, Mode.QUOTE: self.instruments.quote, Mode.FULL: self.instruments.full}
        for mode, tokens in lists.items():
            for index, token in enumerate(tokens):
                add(token, mode, f"instruments.{mode.wire_name}[{index}]")
        for index, source_csv in enumerate(self.instruments.csv):
            for token, line in _read_csv(base, source_csv, f"{source} at instruments.csv[{index}]"):
                add(token, Mode.parse(source_csv.mode), f"{source_csv.path} line {line}")
        return result


def _read_csv(base: Path, source: CsvSource, place: str) -> list[tuple[int, int]]:
    path = base / source.path
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
    except OSError as exc:
        raise ConfigError(f"cannot read instrument file {path} ({place}): {exc.strerror}") from None
    if rows and "instrument_token" not in rows[0]:
        raise ConfigError(
            f"invalid instrument file {path} ({place}): no instrument_token column; "
            "expected Kite's instrument master (https://api.kite.trade/instruments)"
        )

    tokens = []
    for line, row in enumerate(rows, start=2):
        if source.exchange and row.get("exchange") not in source.exchange:
            continue
        if source.segment and row.get("segment") not in source.segment:
            continue
        try:
            tokens.append((int(row["instrument_token"]), line))
        except ValueError:
            raise ConfigError(
                f"invalid instrument_token {row['instrument_token']!r} in {path} line {line}: expected an integer"
            ) from None
        if source.limit is not None and len(tokens) >= source.limit:
            break
    return tokens


_ALLOWED = {
    "feed.allocation": "'round_robin' or 'least_loaded'",
    "feed.transport": "'picows' or 'websockets'",
    "metrics.host": "'127.0.0.1' or '::1'",
    "instruments.csv[].mode": "'ltp', 'quote' or 'full'",
}
"""Allowed values named in the message when a setting has one of a few fixed values."""


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a configuration file; raises :class:`ConfigError` naming the place of a mistake."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        return msgspec.toml.decode(data, type=RunConfig)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = ""
        if " - at `$." in message:
            message, place = message.rsplit(" - at `$.", 1)
            where = f" at {place.rstrip('`')}"
        hint = _ALLOWED.get(re.sub(r"\[\d+\]", "[]", where.removeprefix(" at ")))
        if hint:
            message += f"; expected {hint}"
        raise ConfigError(f"invalid configuration in {path}{where}: {message}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None
