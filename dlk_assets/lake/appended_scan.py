"""Vector search for a table version that only appended rows to one whose search structure is built.

A long-lived reader that also writes (`dlk serve` inserting agent memory) makes a new table version
with every batch, and each new version re-read the whole vector column and rebuilt its inverted
file: at 100k rows the first search after an insert took 0.3-1.4 s, and later ones scanned exactly
until the rebuild was done. When a writer's own commit only appended rows, the structure of the
version before still holds for those rows: `AppendedScan` keeps it and scans the appended rows
exactly beside it, merging the two top-k. Once the appended rows pass `REBUILD_SHARE` of the rows
before them (and at least `REBUILD_MIN_ROWS`), the next append builds a new `VectorScan` from the
vectors already in memory, without re-reading the column.
"""

from __future__ import annotations

import threading

import numpy as np

from dlk_assets.lake.vector_scan import Neighbours, VectorScan, top_k

REBUILD_SHARE = 0.1
REBUILD_MIN_ROWS = 20_000


class AppendedScan:
    """`base` answers for its rows (offsets below `base.rows`); the `appended` unit vectors follow them."""

    def __init__(self, base: VectorScan, appended: np.ndarray):
        self.base, self.appended = base, appended
        self.rows = base.rows + len(appended)
        self._split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._split_lock = threading.Lock()

    def _split_filter(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The filter's base offsets and appended positions. The same base array comes back for the same
        filter array, so the base's inverted file finds the filter it calibrated."""
        with self._split_lock:
            if self._split is None or self._split[0] is not allowed:
                cut = int(np.searchsorted(allowed, self.base.rows))
                self._split = (allowed, allowed[:cut], allowed[cut:] - self.base.rows)
            return self._split[1], self._split[2]

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Neighbours:
        """The `k` rows nearest to the unit `query` (among the sorted offsets `allowed` when given)."""
        if allowed is None:
            found = self.base.search(query, k)
            positions, scores = np.arange(len(self.appended)), self.appended @ query
        else:
            base_allowed, positions = self._split_filter(allowed)
            found = self.base.search(query, k, base_allowed)
            scores = self.appended[positions] @ query
        best = top_k(scores, k)
        rows = np.concatenate((found.rows, positions[best] + self.base.rows))
        scores = np.concatenate((found.scores, scores[best]))
        merged = top_k(scores, k)
        return Neighbours(rows[merged].astype(np.int64), scores[merged])

    def wait_built(self, timeout: float | None = None) -> bool:
        """Wait until the base's search structure is final."""
        return self.base.wait_built(timeout)

    @property
    def recall(self) -> float:
        """The base's recall (the appended rows are scanned exactly)."""
        return self.base.recall

    @property
    def nbytes(self) -> int:
        return self.base.nbytes + self.appended.nbytes

    def describe(self) -> str:
        return f"{self.base.describe()}; {len(self.appended)} vectors appended since, scanned exactly"


def with_appended(scan: VectorScan | AppendedScan, rows: np.ndarray) -> VectorScan | AppendedScan:
    """The search structure after unit vectors `rows` were appended to the table `scan` searches."""
    base, appended = (scan.base, np.concatenate((scan.appended, rows))) if isinstance(scan, AppendedScan) else (scan, rows)
    if len(appended) > max(REBUILD_MIN_ROWS, REBUILD_SHARE * base.rows):
        return VectorScan(np.concatenate((base.row_ordered(), appended)), background=True)
    return AppendedScan(base, appended)
