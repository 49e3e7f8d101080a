"""Decoder benchmark results: ns per packet of kitefeed and the official client, and their ratios."""

from __future__ import annotations

from dataclasses import dataclass, field

DECODER_TARGETS = {"500 full": 150.0, "50 full": 50.0, "250 mixed (vector)": 40.0, "500 mixed": 40.0}
"""Minimum ratio of the official client's time per packet to kitefeed's, by frame."""


@dataclass
class DecoderReport:
    """Median ns per packet of each (frame, implementation), filled as the benchmarks finish."""

    ns_per_packet: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, frame: str, implementation: str, ns_per_packet: float) -> None:
        """Record the median ns per packet of ``implementation`` on ``frame``."""
        self.ns_per_packet[frame, implementation] = ns_per_packet

    def lines(self) -> list[str]:
        """Return one line per frame: each implementation's ns per packet and the ratios."""
        lines: list[str] = []
        frames = dict.fromkeys(frame for frame, _ in self.ns_per_packet)
        for frame in frames:
            official = self.ns_per_packet.get((frame, "official"))
            parts = []
            for implementation in ("decode_into", "decode", "official"):
                value = self.ns_per_packet.get((frame, implementation))
                if value is not None:
                    parts.append(f"{implementation} {value:,.1f}")
            lines.append(f"{frame:<22} ns/packet: " + ", ".join(parts))
            for implementation in ("decode_into", "decode"):
                ours = self.ns_per_packet.get((frame, implementation))
                if ours is None or official is None:
                    continue
                ratio = official / ours
                target = DECODER_TARGETS.get(frame)
                verdict = "" if target is None else f" (target >= {target:g}x: {'met' if ratio >= target else 'MISSED'})"
                lines.append(f"  official / {implementation}: {ratio:,.1f}x{verdict}")
        return lines
