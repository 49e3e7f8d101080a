"""Implementations of :class:`kitefeed.engine.transport.Transport`, one module per WebSocket library."""
