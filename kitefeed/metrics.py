"""A Prometheus endpoint for a running :class:`~kitefeed.Feed` (the ``metrics`` extra).

The collector collects the feed's statistics at each scrape, so the numbers are as
fresh as the scrape and nothing runs between scrapes. Only loopback addresses are
accepted: put a proxy in front of it to expose the endpoint further.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequestError

if TYPE_CHECKING:
    from .engine import Feed

__all__ = ["MetricsServer", "serve_metrics"]

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "::1")
_KEY_STATES = ("running", "auth_failed", "restarting")


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ImportError(
            "the Prometheus endpoint needs prometheus-client: pip install 'kitefeed[metrics]'"
        ) from exc
    return prometheus_client


class _FeedCollector:
    """Turns ``Feed.stats()`` into metric families at each scrape."""

    def __init__(self, feed: Feed) -> None:
        self._feed = feed

    def collect(self) -> Iterator[Any]:
        core = _prometheus().core
        stats = self._feed.stats()
        key_labels = ["api_key"]
        connection_labels = ["api_key", "connection"]

        counters = {
            "frames": ("kitefeed_messages", "Binary market-data messages received, heartbeats excluded"),
            "heartbeats": ("kitefeed_heartbeats", "Heartbeat messages received"),
            "ticks": ("kitefeed_ticks", "Ticks decoded and published"),
            "bytes": ("kitefeed_received_bytes", "Payload bytes of binary messages received"),
            "parse_errors": ("kitefeed_parse_errors", "Damaged packets skipped"),
            "text_messages": ("kitefeed_text_messages", "Text messages received (order updates, errors)"),
        }
        for field, (name, documentation) in counters.items():
            family = core.CounterMetricFamily(name, documentation, labels=connection_labels)
            for key in stats.keys:
                for connection in key.connections:
                    family.add_metric([key.api_key, str(connection.connection)], getattr(connection, field))
            yield family

        reconnects = core.CounterMetricFamily(
            "kitefeed_reconnects", "Handshakes after the first one of a connection", labels=connection_labels
        )
        connected = core.GaugeMetricFamily("kitefeed_connected", "1 when the connection is open", labels=connection_labels)
        instruments = core.GaugeMetricFamily(
            "kitefeed_instruments", "Instruments subscribed on the connection", labels=connection_labels
        )
        for key in stats.keys:
            for connection in key.connections:
                labels = [key.api_key, str(connection.connection)]
                reconnects.add_metric(labels, max(0, connection.connects - 1))
                connected.add_metric(labels, int(connection.connected))
                instruments.add_metric(labels, connection.instruments)
        yield reconnects
        yield connected
        yield instruments

        lost = core.CounterMetricFamily(
            "kitefeed_records_lost", "Records that readers opened by the feed missed", labels=key_labels
        )
        position = core.CounterMetricFamily("kitefeed_ring_published", "Records published into the key's ring", labels=key_labels)
        state = core.GaugeMetricFamily("kitefeed_key_state", "1 for the key's current state", labels=["api_key", "state"])
        restarts = core.CounterMetricFamily("kitefeed_worker_restarts", "Restarts of the key's worker", labels=key_labels)
        for key in stats.keys:
            lost.add_metric([key.api_key], key.records_lost)
            position.add_metric([key.api_key], key.ring_position)
            restarts.add_metric([key.api_key], key.worker_restarts)
            for name in _KEY_STATES:
                state.add_metric([key.api_key, name], int(key.state == name))
        yield lost
        yield position
        yield state
        yield restarts

        lag = core.GaugeMetricFamily(
            "kitefeed_reader_lag", "Records published but not yet read, per reader opened by the feed", labels=["reader", "api_key"]
        )
        for number, reader in enumerate(list(self._feed._readers)):
            for api_key, ring in zip(reader.keys, reader.stats().rings):
                lag.add_metric([str(number), api_key], ring.published - ring.position)
        yield lag


class MetricsServer:
    """A running endpoint; :meth:`close` stops it."""

    def __init__(self, server: Any, thread: Any) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_metrics(feed: Feed, port: int = 0, host: str = "127.0.0.1") -> MetricsServer:
    """Serve the feed's metrics at ``http://host:port/metrics`` from a daemon thread.

    ``port`` 0 picks a free port (see :attr:`MetricsServer.port`). Raises
    :class:`InvalidRequestError` for a host other than 127.0.0.1 or ::1.
    """
    if host not in _LOOPBACK:
        raise InvalidRequestError(f"invalid metrics host {host!r}: expected 127.0.0.1 or ::1")
    prometheus = _prometheus()
    registry = prometheus.CollectorRegistry()
    registry.register(_FeedCollector(feed))
    server, thread = prometheus.start_http_server(port, addr=host, registry=registry)
    logger.info("metrics of feed %r at http://%s:%d/metrics", feed.name, host, server.server_port)
    return MetricsServer(server, thread)
