"""Which partitions a model has embedded, and what a backfill to the target would cost (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coverage:
    """Per partition: rows to embed, and how many of them each model's table holds."""

    target: str
    rows: dict[str, int]
    embedded: dict[str, dict[str, int]]  # fingerprint -> partition -> rows embedded

    def _complete(self, fingerprint: str, partition: str) -> bool:
        return self.embedded.get(fingerprint, {}).get(partition, 0) == self.rows[partition]

    @property
    def current(self) -> list[str]:
        """Partitions the target has embedded completely."""
        return [p for p in sorted(self.rows) if self._complete(self.target, p)]

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
    """What bringing the target up to date takes: items, the target's measured speed, and the time."""

    items: int
    items_per_second: float | None  # None: never measured
    measured: str  # where the speed comes from
    overhead_seconds: float = 0.0  # loading the model once per backfill run

    @property
    def seconds(self) -> float | None:
        if self.items == 0:
            return 0.0
        return self.items / self.items_per_second + self.overhead_seconds if self.items_per_second else None


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
