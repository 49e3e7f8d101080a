"""API key credentials, with the access token kept out of reprs, logs and pickles."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import InvalidRequestError

__all__ = ["ApiKey", "parse_keys", "redact"]

_API_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ApiKey:
    """One Kite Connect API key and its access token.

    The token is readable through :attr:`access_token` but never appears in ``repr``,
    ``str`` or ``pickle`` output, so it cannot leak through logs, exceptions or the
    arguments of a worker process. Workers receive it over their command pipe.
    """

    __slots__ = ("api_key", "_access_token")

    def __init__(self, api_key: str, access_token: str) -> None:
        if not isinstance(api_key, str) or not _API_KEY_PATTERN.fullmatch(api_key):
            raise InvalidRequestError(
                f"invalid api_key {api_key!r}: expected 1 to 64 letters, digits, '_' or '-'"
            )
        if not isinstance(access_token, str) or not access_token or len(access_token) > 256:
            # The value is a secret, so the message names the key instead.
            raise InvalidRequestError(
                f"invalid access token for api_key {api_key!r}: expected a non-empty string of at most 256 characters"
            )
        self.api_key = api_key
        self._access_token = access_token

    @property
    def access_token(self) -> str:
        """The session token from Kite's login flow. Never log it."""
        return self._access_token

    def __repr__(self) -> str:
        return f"ApiKey({self.api_key!r}, access_token=<hidden>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return self.api_key == other.api_key and self._access_token == other._access_token

    def __hash__(self) -> int:
        return hash(self.api_key)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"ApiKey({self.api_key!r}) cannot be pickled: the access token must not leave the process this way"
        )


def redact(text: str, secret: str) -> str:
    """Return ``text`` with every occurrence of ``secret`` replaced by ``<hidden>``."""
    if not secret:
        return text
    return text.replace(secret, "<hidden>")


def parse_keys(keys: Sequence[ApiKey] | Mapping[str, str]) -> list[ApiKey]:
    """Return ``keys`` (ApiKey objects, or a mapping of api_key to token) as a list of ApiKey."""
    if isinstance(keys, Mapping):
        parsed = [ApiKey(api_key, token) for api_key, token in keys.items()]
    elif isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise InvalidRequestError(
            f"invalid keys {type(keys).__name__}: expected ApiKey objects or a mapping of api_key to access token"
        )
    else:
        parsed = []
        for key in keys:
            if not isinstance(key, ApiKey):
                raise InvalidRequestError(
                    f"invalid key {type(key).__name__}: expected kitefeed.ApiKey(api_key, access_token)"
                )
            parsed.append(key)
    if not parsed:
        raise InvalidRequestError("no API keys given: a feed needs at least one")
    names = [key.api_key for key in parsed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidRequestError(f"api_key {duplicates[0]!r} is given twice; pass each key once")
    return parsed
