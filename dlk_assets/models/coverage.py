"""Which partitions a model has embedded, and what a backfill to the target would cost (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Coverage:
    """Per partition: rows to embed, and how many of them each model's table holds."""

    target: str  # the target's table name
    rows: dict[str, int]
    embedded: dict[str, dict[str, int]]  # per-model table name -> partition -> rows embedded

    def _complete(self, table: str, partition: str) -> bool:
        return self.embedded.get(table, {}).get(partition, 0) == self.rows[partition]

    def complete_partitions(self, table: str) -> list[str]:
        """The partitions `table` holds every row of."""
        return [p for p in sorted(self.rows) if self._complete(table, p)]

    @property
    def current(self) -> list[str]:
        """Partitions the target has embedded completely."""
        return self.complete_partitions(self.target)

    @property
    def behind(self) -> dict[str, list[str]]:
        """Partitions the target lacks, each with the other models that have it (empty: none has it yet)."""
        return {p: sorted(f for f in self.embedded if f != self.target and self._complete(f, p))
                for p in sorted(self.rows) if not self._complete(self.target, p)}

    @property
    def items_to_embed(self) -> int:
        return sum(self.rows[p] for p in self.behind)

    @property
    def complete(self) -> bool:
        return not self.behind


@dataclass(frozen=True)
class CostEstimate:
    """What bringing the target up to date takes: items, runs, the target's measured speed, the time."""

    items: int
    partitions: int
    runs: int  # backfill runs; each loads the model once
    items_per_second: float | None  # None: never measured
    load_seconds: float
    measured: str  # where the speed comes from

    @property
    def seconds(self) -> float | None:
        if self.items == 0:
            return 0.0
        return self.items / self.items_per_second + self.runs * self.load_seconds if self.items_per_second else None

    def metadata(self) -> dict[str, Any]:
        """The estimate as plain values, for check and asset metadata."""
        seconds = self.seconds
        return {
            "items_to_embed": self.items, "partitions_to_embed": self.partitions, "backfill_runs": self.runs,
            "target_items_per_second": round(self.items_per_second, 3) if self.items_per_second else "unknown",
            "model_load_seconds_per_run": round(self.load_seconds, 2), "throughput_source": self.measured,
            "expected_duration": format_duration(seconds),
            "expected_seconds": round(seconds, 1) if seconds is not None else "unknown",
        }


def estimate_backfill(covered: Coverage, partitions_per_run: int, speed: tuple[float, float] | None, measured: str) -> CostEstimate:
    """The cost of embedding what the target lacks, from a measured (items/s, load seconds)."""
    rate, load = speed if speed and speed[0] else (None, 0.0)
    runs = -(-len(covered.behind) // partitions_per_run)
    return CostEstimate(covered.items_to_embed, len(covered.behind), runs, rate, load, measured if rate else "not measured")


def format_duration(seconds: float | None) -> str:
    """`0.4 s`, `45 s`, `12 min`, `3.5 h`; `unknown` when there is no measurement."""
    if seconds is None:
        return "unknown"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
