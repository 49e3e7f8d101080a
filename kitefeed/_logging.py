"""Logging helpers shared by the engine and the simulator."""

from __future__ import annotations

import logging

__all__ = ["quiet_websockets_logger"]


class _NoDebugAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Drops debug records, which in websockets include the request line and so the token."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's API name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def quiet_websockets_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """Return a logger for the ``websockets`` library that never emits its debug records.

    websockets logs each handshake's request line at DEBUG; Kite's request line carries
    the access token in its query string, so those records must never be written.
    """
    return _NoDebugAdapter(logging.getLogger(name), {})
