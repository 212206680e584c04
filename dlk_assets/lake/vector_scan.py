"""Nearest neighbours over one vector column held in memory at one table version.

Deep Lake's clustered index misses 10-40% of the true top-10 once it has been built up over many
partition commits (see PERF.md), and a scan inside the engine is ~40x slower than numpy. So a
table answers vector searches here, from its column's unit vectors read once per table version:

- below `IVF_MIN_ROWS` rows, an exact scan (one matrix-vector product; recall 1.0);
- from there on, an inverted file (built in a background thread when asked, the exact scan
  answering meanwhile, so a new table version never makes a search wait for k-means): spherical
  k-means lists over the rows, stored list by list in one contiguous matrix, and a query scans the
  lists whose centroids are nearest. How many lists
  a query scans is calibrated when the index is built: leave-one-out queries (rows of the table
  against the rest) must find `TARGET_RECALL` of their exact top-10, and the recall measured
  there is reported with every search (`VectorScan.recall`). A query further from every centroid
  than all calibration queries (unlike the rows: another modality, say) is scanned exactly.
  A filter keeping more rows than an exact gather handles gets its own calibration, once per filter:
  how many of its rows a search must scan, nearest lists first, for `TARGET_RECALL` of the top-10
  among them. A filter independent of the vectors (a tenant, a random half) needs about what an
  unfiltered search scans; one that keeps or drops whole clusters needs far more, as the nearest
  kept rows of a query in a dropped cluster lie in farther lists, whose order is looser.

Memory: the matrix is float32 (4 x dim bytes per vector: 1.5 GiB per million 384-d vectors) plus
8 bytes per row of bookkeeping for the inverted file; building it holds the matrix twice.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

IVF_MIN_ROWS = 100_000
TARGET_RECALL = 0.995
MIN_PROBES = 2
FILTER_CALIBRATION_QUERIES = 64
LIST_COST_ROWS = 200  # a list's fixed cost in a scan (numpy calls), in rows scored (384-d, 2-core machine)
FILTERS_KEPT = 16  # calibrated filters an inverted file remembers (a service asks one per tenant)
# Past this share of lists probed, an inverted file scans nearly everything with more overhead: scan exactly.
MAX_PROBED_SHARE = 0.25
CALIBRATION_QUERIES = 128
KMEANS_ITERATIONS = 8
TRAINING_ROWS_PER_LIST = 48
_BLOCK = 32_768


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """`matrix` (float32, one vector per row) scaled in place to unit length; zero rows stay zero."""
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return matrix


def unit_query(query: np.ndarray) -> np.ndarray:
    """The query vector(s) as float32 scaled to unit length along the last axis."""
    query = np.asarray(query, dtype=np.float32)
    return query / np.maximum(np.linalg.norm(query, axis=-1, keepdims=True), 1e-12)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the `k` highest scores, best first; equal scores in position order. Which of several
    rows tied at the k-th score is kept is the partition's (deterministic) choice."""
    if len(scores) > k:
        best = np.argpartition(-scores, k - 1)[:k]
    else:
        best = np.arange(len(scores))
    return best[np.lexsort((best, -scores[best]))]


@dataclass(frozen=True)
class Neighbours:
    """Row offsets (in table order) and their cosine scores, best first."""

    rows: np.ndarray
    scores: np.ndarray


class VectorScan:
    """Cosine top-k over a table version's unit vectors: exact below `IVF_MIN_ROWS`, an inverted file above."""

    def __init__(self, matrix: np.ndarray, seed: int = 0, ivf_min_rows: int = IVF_MIN_ROWS, background: bool = False):
        """`matrix`: unit vectors in row order (float32, owned by the scan from now on). With `background`,
        the inverted file is built in a daemon thread while searches scan exactly (`wait_built`)."""
        self.rows = len(matrix)
        # (inverted file, row-ordered matrix): replaced in one assignment, so a search running beside
        # the build sees either the exact scan or the finished inverted file, never half of each.
        self._state: tuple[_InvertedFile | None, np.ndarray | None] = (None, matrix)
        self._unclustered = ""
        self._built = threading.Event()
        if self.rows < ivf_min_rows:
            self._built.set()
        elif background:
            threading.Thread(target=self._build, args=(matrix, seed), name="dlk-inverted-file", daemon=True).start()
        else:
            self._build(matrix, seed)

    def _build(self, matrix: np.ndarray, seed: int) -> None:
        try:
            ivf = _InvertedFile(matrix, seed)
            if ivf.probes > MAX_PROBED_SHARE * ivf.lists:
                self._unclustered = ivf.describe()
            else:
                self._state = (ivf, None)  # the row-ordered matrix goes: the inverted file holds its own copy
        finally:
            self._built.set()

    def wait_built(self, timeout: float | None = None) -> bool:
        """Wait until the search structure is final (an inverted file being built is done); False on timeout."""
        return self._built.wait(timeout)

    def row_ordered(self) -> np.ndarray:
        """The unit vectors in row order (a new array once the inverted file holds them grouped)."""
        ivf, matrix = self._state
        return matrix if ivf is None else ivf.matrix[ivf.position]

    @property
    def nbytes(self) -> int:
        """Bytes this scan holds (the vectors, and the inverted file's centroids and row maps)."""
        ivf, matrix = self._state
        if ivf is None:
            return matrix.nbytes
        return ivf.matrix.nbytes + ivf.centroids.nbytes + ivf.order.nbytes + ivf.position.nbytes + ivf.bounds.nbytes

    @property
    def recall(self) -> float:
        """Recall@10 against exact search: 1.0 for the exact scan, the calibrated estimate for the inverted file."""
        ivf, _ = self._state
        return ivf.recall if ivf else 1.0

    def describe(self) -> str:
        """One line for logs and metadata: how searches are answered and the recall they deliver."""
        ivf, _ = self._state
        if ivf is not None:
            return ivf.describe()
        if not self._built.is_set():
            return f"exact scan over {self.rows} vectors, recall 1.0, while an inverted file is built"
        why = f" ({self._unclustered}: too many to gain from it)" if self._unclustered else ""
        return f"exact scan over {self.rows} vectors, recall 1.0{why}"

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Neighbours:
        """The `k` rows nearest to the unit `query`, only among the sorted row offsets `allowed` when given."""
        if self.rows == 0 or (allowed is not None and len(allowed) == 0):
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        if allowed is not None and len(allowed) == self.rows:  # sorted distinct offsets: a filter keeping every row
            allowed = None
        ivf, matrix = self._state
        if ivf is not None:
            return ivf.search(query, k, allowed)
        if allowed is None:
            scores = matrix @ query
            best = top_k(scores, k)
            return Neighbours(best.astype(np.int64), scores[best])
        # Gathering a few rows is cheaper than scoring all; scoring all beats gathering most of them.
        scores = matrix[allowed] @ query if len(allowed) * 4 < self.rows else (matrix @ query)[allowed]
        best = top_k(scores, k)
        return Neighbours(allowed[best].astype(np.int64), scores[best])


class _InvertedFile:
    """Rows grouped by their nearest k-means centroid, each group contiguous in one matrix."""

    def __init__(self, matrix: np.ndarray, seed: int):
        rng = np.random.default_rng(seed)
        rows = len(matrix)
        self.lists = int(min(4096, max(16, round(math.sqrt(rows)))))
        self.centroids = _spherical_kmeans(matrix, self.lists, rng)
        assignment = _nearest_centroid(matrix, self.centroids)
        self.order = np.argsort(assignment, kind="stable")  # position in the grouped matrix -> row offset
        self.position = np.empty(rows, dtype=np.int64)  # row offset -> position
        self.position[self.order] = np.arange(rows)
        self.bounds = np.searchsorted(assignment[self.order], np.arange(self.lists + 1))
        self.probes, self.recall, self.typical_floor = _calibrate(matrix, self.centroids, assignment, rng)
        self.matrix = matrix[self.order]  # the caller drops its row-ordered matrix once this is built
        self._seed = seed
        self._filters: dict[int, _Filter] = {}
        self._filters_lock = threading.Lock()  # request threads share one inverted file

    def describe(self) -> str:
        return (f"inverted file over {len(self.order)} vectors: {self.lists} lists, {self.probes} probed per query, "
                f"recall@10 {self.recall:.3f} on {CALIBRATION_QUERIES} leave-one-out queries")

    def _lists_to_scan(self, centroid_scores: np.ndarray, k: int) -> np.ndarray:
        """The calibrated number of lists nearest the query (more for k past 10)."""
        probes = math.ceil(self.probes * max(1.0, math.sqrt(k / 10)))
        return top_k(centroid_scores, int(min(self.lists, probes)))

    def _filter(self, allowed: np.ndarray) -> _Filter:
        """The filter's kept positions and calibrated scan budget. A caller that asks again with the same
        row numbers (a table caches an array per filter and version; a version that only appended rows
        asks with equal ones) gets them back."""
        with self._filters_lock:
            found = self._filters.get(id(allowed))
            if found is not None and found.allowed is allowed:
                return found
            for known in self._filters.values():
                if len(known.allowed) == len(allowed) and np.array_equal(known.allowed, allowed):
                    return known
            kept = np.zeros(len(self.order), dtype=bool)
            kept[self.position[allowed]] = True
            running = np.concatenate(([0], np.cumsum(kept)))
            per_list = running[self.bounds[1:]] - running[self.bounds[:-1]]
            budget = _calibrate_filter(self.matrix, self.centroids, self.bounds, kept, per_list,
                                       np.random.default_rng(self._seed + 1))
            while len(self._filters) >= FILTERS_KEPT:
                self._filters.pop(next(iter(self._filters)))
            found = self._filters[id(allowed)] = _Filter(allowed, kept, np.flatnonzero(kept), per_list, budget)
            return found

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> Neighbours:
        chosen = None
        if allowed is not None:
            if len(allowed) <= _BLOCK:  # a selective filter: score exactly what it keeps
                scores = self.matrix[self.position[allowed]] @ query
                best = top_k(scores, k)
                return Neighbours(allowed[best].astype(np.int64), scores[best])
            chosen = self._filter(allowed)
        centroid_scores = self.centroids @ query
        if centroid_scores.max() < self.typical_floor:
            # Further from every centroid than any calibration query: unlike the rows, so the
            # calibrated probes say nothing about it (a query from another modality, say). Scan all.
            return self._scan_all(query, k, chosen)
        if chosen is None:
            lists = np.sort(self._lists_to_scan(centroid_scores, k))  # front to back through the matrix
            return self._scan_lists(query, k, lists, None)
        lists = chosen.lists_for(centroid_scores, k)
        scanned = int((self.bounds[lists + 1] - self.bounds[lists]).sum()) + LIST_COST_ROWS * len(lists)
        if scanned >= len(self.order):  # a filter sending the query through most lists: one pass is cheaper
            return self._scan_all(query, k, chosen)
        return self._scan_lists(query, k, np.sort(lists), chosen.kept)

    def _scan_all(self, query: np.ndarray, k: int, chosen: _Filter | None) -> Neighbours:
        scores = self.matrix @ query
        positions = None
        if chosen is not None:  # ranking only the kept scores costs less than masking the others
            positions = chosen.positions
            scores = scores[positions]
        best = top_k(scores, k)
        found = best if positions is None else positions[best]
        return Neighbours(self.order[found], scores[best])

    def _scan_lists(self, query: np.ndarray, k: int, lists: np.ndarray, kept: np.ndarray | None) -> Neighbours:
        positions, scores = [], []
        for index in lists:
            start, end = self.bounds[index], self.bounds[index + 1]
            span, part = np.arange(start, end), self.matrix[start:end] @ query
            if kept is not None:
                mask = kept[start:end]
                span, part = span[mask], part[mask]
            positions.append(span)
            scores.append(part)
        if not positions:
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        positions, scores = np.concatenate(positions), np.concatenate(scores)
        best = top_k(scores, k)
        return Neighbours(self.order[positions[best]], scores[best])

@dataclass(frozen=True)
class _Filter:
    """A filter as an inverted file sees it: which grouped positions it keeps, how many per list, and
    how many kept rows a search scans (nearest lists first) for `TARGET_RECALL`."""

    allowed: np.ndarray
    kept: np.ndarray  # per grouped position
    positions: np.ndarray  # the kept grouped positions, ascending
    per_list: np.ndarray
    budget: float

    def lists_for(self, centroid_scores: np.ndarray, k: int) -> np.ndarray:
        """The nearest lists holding `budget` kept rows (more for k past 10), skipping lists it empties."""
        ranked = np.argsort(-centroid_scores)
        seen = np.cumsum(self.per_list[ranked])
        count = int(np.searchsorted(seen, self.budget * max(1.0, math.sqrt(k / 10)))) + 1
        chosen = ranked[:count]
        return chosen[self.per_list[chosen] > 0]


def _nearest_centroid(matrix: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    assignment = np.empty(len(matrix), dtype=np.int64)
    for start in range(0, len(matrix), _BLOCK):
        assignment[start:start + _BLOCK] = (matrix[start:start + _BLOCK] @ centroids.T).argmax(axis=1)
    return assignment


def _spherical_kmeans(matrix: np.ndarray, lists: int, rng: np.random.Generator) -> np.ndarray:
    """`lists` unit centroids trained on a seeded sample of the rows (cosine k-means)."""
    sample = np.sort(rng.choice(len(matrix), size=min(len(matrix), lists * TRAINING_ROWS_PER_LIST), replace=False))
    points = matrix[sample]
    centroids = points[rng.choice(len(points), size=lists, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        assignment = _nearest_centroid(points, centroids)
        order = np.argsort(assignment, kind="stable")
        counts = np.bincount(assignment, minlength=lists)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        filled = counts > 0
        sums = np.add.reduceat(points[order], starts[filled], axis=0)
        centroids[filled] = sums
        # An empty list takes a random point, so every list ends up holding rows.
        centroids[~filled] = points[rng.choice(len(points), size=int((~filled).sum()), replace=False)]
        unit_rows(centroids)
    return centroids


def _calibrate(matrix: np.ndarray, centroids: np.ndarray, assignment: np.ndarray,
               rng: np.random.Generator) -> tuple[int, float, float]:
    """The fewest lists to probe for `TARGET_RECALL` of the exact top-10, the recall that gives, and the
    lowest best-centroid similarity among the calibration queries (queries below it are unlike them).

    Queries are rows of the table searched against the others (leave-one-out), so they follow the
    data's own distribution; a list counts as found when the query's nearest-centroid ranking
    reaches it within the probe budget, which is exactly what a search with that budget scans."""
    queries_at = rng.choice(len(matrix), size=min(CALIBRATION_QUERIES, len(matrix)), replace=False)
    queries = matrix[queries_at]
    truth = _exact_top(matrix, queries, 11)
    neighbours = [row[row != own][:10] for row, own in zip(truth, queries_at)]
    centroid_scores = queries @ centroids.T
    typical_floor = float(centroid_scores.max(axis=1).min())
    list_rank = np.argsort(np.argsort(-centroid_scores, axis=1), axis=1)
    ranks = np.concatenate([list_rank[q, assignment[rows]] for q, rows in enumerate(neighbours)])
    lists = len(centroids)
    for probes in range(MIN_PROBES, lists + 1):
        recall = float(np.mean(ranks < probes))
        if recall >= TARGET_RECALL:
            return probes, recall, typical_floor
    return lists, 1.0, typical_floor


def _calibrate_filter(matrix: np.ndarray, centroids: np.ndarray, bounds: np.ndarray, kept: np.ndarray,
                      per_list: np.ndarray, rng: np.random.Generator) -> float:
    """Kept rows a search must scan (nearest lists first) for `TARGET_RECALL` of each query's top-10
    among the kept rows. Queries are rows of the whole table (a filter
    does not restrict where queries come from), each searched against the other kept rows."""
    queries_at = rng.choice(len(matrix), size=min(FILTER_CALIBRATION_QUERIES, len(matrix)), replace=False)
    queries = matrix[queries_at]
    truth = _exact_top(matrix, queries, 11, kept)
    centroid_scores = queries @ centroids.T
    needed = []
    for q, own in enumerate(queries_at):
        neighbours = truth[q][truth[q] != own][:10]
        ranked = np.argsort(-centroid_scores[q])
        rank_of = np.empty(len(ranked), dtype=np.int64)
        rank_of[ranked] = np.arange(len(ranked))
        kept_through = np.cumsum(per_list[ranked])  # kept rows scanned once the list at each rank is
        needed.append(kept_through[rank_of[np.searchsorted(bounds, neighbours, side="right") - 1]])
    return float(np.quantile(np.concatenate(needed), TARGET_RECALL, method="higher"))


def _exact_top(matrix: np.ndarray, queries: np.ndarray, k: int, kept: np.ndarray | None = None) -> np.ndarray:
    """Row offsets of each query's exact top-`k` (among the `kept` rows when given), best first,
    scanning the matrix in blocks."""
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    for start in range(0, len(matrix), _BLOCK):
        scores = queries @ matrix[start:start + _BLOCK].T
        if kept is not None:
            scores[:, ~kept[start:start + _BLOCK]] = -np.inf
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        all_scores = np.concatenate((best_scores, scores), axis=1)
        all_rows = np.concatenate((best_rows, rows), axis=1)
        keep = np.argpartition(-all_scores, min(k, all_scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, keep, axis=1)
        best_rows = np.take_along_axis(all_rows, keep, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1)
