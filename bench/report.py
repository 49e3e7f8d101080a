"""Results of one benchmark run, with the ratios and targets printed after pytest-benchmark's tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

THROUGHPUT_TARGETS = {1: 30.0, 50: 7.0, 500: 4.0}
"""Minimum ratio of ring records/s to multiprocessing.Queue records/s, by batch size."""

VISIBLE_TARGETS_NS = {"p50": 1_000, "p99": 5_000}
"""Maximum publish-to-visible latency of a busy-polling reader, in ns."""

WAKE_TARGETS_NS = {"p50": 50_000}
"""Maximum wake-up latency of a blocked reader, in ns."""

PUBLISH_OVERHEAD_TARGET_NS = 1_000
"""Maximum time of publish() beyond the bare numpy copy of the same batch, in ns."""

PERCENTILES = {"p50": 50.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0}

OFFICIAL_CPU_RATIO_TARGET = 50.0
"""Minimum ratio of KiteTicker's CPU time per tick to the feed's, at the same load."""


@dataclass(frozen=True)
class EndToEnd:
    """The numbers of one end-to-end run, as printed."""

    ticks_per_s: float
    """Ticks that reached the reader (or KiteTicker's on_ticks) per second."""
    offered_per_s: float
    """Ticks the simulator sent per second."""
    cpu_per_tick_ns: float
    """CPU time of the feed (workers and supervisor), or of KiteTicker's process, per tick."""
    lost: int
    """Ticks lost: by the reader, plus messages that the simulator dropped for a slow client."""
    latency_ns: dict[str, int] = field(default_factory=dict)
    """Percentiles of the arrival-to-reader latency; empty for KiteTicker."""


def percentiles_ns(samples: np.ndarray) -> dict[str, int]:
    """Return the percentiles of ``samples`` (int64 ns, 1-D) named as in :data:`PERCENTILES`."""
    values = np.percentile(samples, list(PERCENTILES.values()))
    return {name: int(value) for name, value in zip(PERCENTILES, values)}


@dataclass
class Report:
    """The numbers of one run, collected by the benchmarks as they finish."""

    load_at_start: float = 0.0
    """One-minute load average when the run started, because other work on the host skews the numbers."""
    load_at_end: float = 0.0
    """One-minute load average when the run ended."""

    throughput: dict[tuple[str, int], tuple[float, int, str]] = field(default_factory=dict)
    """(transport, batch size) to (records/s, records lost or torn, reader strategy)."""
    latency: dict[str, tuple[dict[str, int], int, str]] = field(default_factory=dict)
    """Benchmark name to (percentiles in ns, sample count, reader strategy)."""
    end_to_end: dict[str, EndToEnd] = field(default_factory=dict)
    """Run name to its numbers; see :meth:`add_end_to_end`."""
    memory: list[str] = field(default_factory=list)
    """Lines of the memory benchmark, printed as they are."""
    publish_ns: dict[tuple[str, int], float] = field(default_factory=dict)
    """(operation, batch size) to median time of one call in ns.

    The operations are "publish", "copy" (a slice assignment of the same dtype) and
    "copy-void" (the same bytes copied as opaque records, which is a memcpy).
    """

    @property
    def empty(self) -> bool:
        """Whether no benchmark reported anything."""
        return not (self.throughput or self.latency or self.publish_ns or self.end_to_end or self.memory)

    def add_throughput(self, transport: str, batch_size: int, records_per_s: float, lost: int, strategy: str) -> None:
        """Record the median records/s of ``transport`` at ``batch_size``."""
        self.throughput[transport, batch_size] = (records_per_s, lost, strategy)

    def add_latency(self, name: str, samples: np.ndarray, strategy: str) -> dict[str, int]:
        """Record and return the percentiles of ``samples`` (int64 ns, 1-D)."""
        result = percentiles_ns(samples)
        self.latency[name] = (result, len(samples), strategy)
        return result

    def add_publish(self, operation: str, batch_size: int, median_ns: float) -> None:
        """Record the median time of one ``operation`` call, in ns."""
        self.publish_ns[operation, batch_size] = median_ns

    def add_end_to_end(self, name: str, result: EndToEnd) -> None:
        """Record one end-to-end run. "kiteticker" and "kitefeed, same load" are compared."""
        self.end_to_end[name] = result

    def lines(self) -> list[str]:
        """Return the summary as lines of text."""
        load = f"load average (1 min): {self.load_at_start:.2f} at start, {self.load_at_end:.2f} at end"
        return (
            [load]
            + self._throughput_lines()
            + self._latency_lines()
            + self._publish_lines()
            + self._end_to_end_lines()
            + self.memory
        )

    def _end_to_end_lines(self) -> list[str]:
        lines: list[str] = []
        for name, result in self.end_to_end.items():
            latency = ", ".join(f"{key} {value / 1000:.0f} us" for key, value in result.latency_ns.items())
            lines.append(
                f"{name}: {result.ticks_per_s:,.0f} ticks/s read of {result.offered_per_s:,.0f} sent, "
                f"{result.cpu_per_tick_ns:,.0f} ns CPU per tick, lost {result.lost}"
                + (f", latency {latency}" if latency else "")
            )
        official = self.end_to_end.get("kiteticker")
        ours = self.end_to_end.get("kitefeed, same load")
        if official is not None and ours is not None:
            ratio = official.cpu_per_tick_ns / ours.cpu_per_tick_ns
            met = _verdict(ratio >= OFFICIAL_CPU_RATIO_TARGET)
            lines.append(f"  CPU per tick, KiteTicker / kitefeed: {ratio:.1f}x (target >= {OFFICIAL_CPU_RATIO_TARGET:g}x: {met})")
        return lines

    def _throughput_lines(self) -> list[str]:
        lines: list[str] = []
        for batch_size in sorted({size for _, size in self.throughput}):
            ring = self.throughput.get(("ring", batch_size))
            lines.append(f"throughput, batch of {batch_size}:")
            for (transport, size), (rate, lost, strategy) in sorted(self.throughput.items()):
                if size != batch_size:
                    continue
                detail = f", lost or torn {lost}, reader {strategy}" if transport.startswith("ring") else ""
                lines.append(f"  {transport:<10} {rate:>14,.0f} records/s{detail}")
            for peer in ("queue", "pipe"):
                other = self.throughput.get((peer, batch_size))
                if ring is None or other is None:
                    continue
                ratio = ring[0] / other[0]
                target = THROUGHPUT_TARGETS.get(batch_size) if peer == "queue" else None
                verdict = "" if target is None else f" (target >= {target:g}x: {_verdict(ratio >= target)})"
                lines.append(f"  ring / {peer}: {ratio:.1f}x{verdict}")
        return lines

    def _latency_lines(self) -> list[str]:
        lines: list[str] = []
        for name, (result, count, strategy) in self.latency.items():
            values = ", ".join(f"{key} {value / 1000:.2f} us" for key, value in result.items())
            lines.append(f"{name} ({count} samples, reader {strategy}): {values}")
            targets = {"publish-to-visible latency": VISIBLE_TARGETS_NS, "wake-up latency": WAKE_TARGETS_NS}
            for key, limit in targets.get(name, {}).items():
                lines.append(f"  target {key} <= {limit / 1000:g} us: {_verdict(result[key] <= limit)}")
        return lines

    def _publish_lines(self) -> list[str]:
        lines: list[str] = []
        for batch_size in sorted({size for _, size in self.publish_ns}):
            publish = self.publish_ns.get(("publish", batch_size))
            if publish is None:
                continue
            lines.append(f"publish of {batch_size}: {publish:.0f} ns")
            for operation in ("copy", "copy-void"):
                copy = self.publish_ns.get((operation, batch_size))
                if copy is None:
                    continue
                overhead = publish - copy
                lines.append(
                    f"  {operation} {copy:.0f} ns, publish overhead {overhead:.0f} ns "
                    f"(target <= {PUBLISH_OVERHEAD_TARGET_NS} ns: {_verdict(overhead <= PUBLISH_OVERHEAD_TARGET_NS)})"
                )
        return lines


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"
