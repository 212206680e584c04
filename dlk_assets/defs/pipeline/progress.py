"""Progress lines for long work: items done of total, items per second, time left."""

from __future__ import annotations

import time
from collections.abc import Callable

from dlk_assets.models.coverage import format_duration


class Progress:
    """Counts work done and logs at most every `every_s` seconds (and always at the end)."""

    def __init__(self, total: int, unit: str, log: Callable[[str], None], every_s: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.total, self.unit, self.log, self.every_s, self.clock = total, unit, log, every_s, clock
        self.done = 0
        self.started = clock()
        self._last_logged = self.started

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, label: str) -> str:
        rate = self.rate
        left = (self.total - self.done) / rate if rate else None
        return (f"{label}: {self.done}/{self.total} {self.unit}, {rate:.2f} {self.unit}/s, "
                f"{format_duration(left) if self.done < self.total else 'done'}{' left' if self.done < self.total else ''}")

    def advance(self, count: int, label: str) -> None:
        self.done += count
        now = self.clock()
        if self.done >= self.total or now - self._last_logged >= self.every_s:
            self._last_logged = now
            self.log(self.line(label))
