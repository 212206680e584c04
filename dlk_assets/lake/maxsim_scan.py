"""MaxSim over one multi-vector column held in memory at one table version, with candidate pruning.

Exact MaxSim is compute-bound (every query token against every token of every row: 250 ms for
100k rows x 32 tokens in numpy, PERF.md). Like PLAID, this scores few rows exactly: each row's
tokens are pooled into one vector (their mean), the pooled vectors are searched by the summed
query tokens — a lower bound of MaxSim, since sum_i max_j q_i.d_j >= sum_i q_i.mean(d) — and the
best `candidates(k)` rows are re-scored by exact MaxSim. Tables of up to `EXACT_MAX_ROWS` rows are
scored exactly. The score is Deep Lake's MAXSIM: the sum over query tokens of the best cosine.

Memory: tokens are kept as float16 (2 x dim bytes per token: 7.6 GiB per million rows of
32 x 128) plus the pooled float32 vectors (0.5 GiB per million 128-d rows). Candidates are ranked
from the float16 tokens (scores within ~3e-4 relative); the few best are then re-scored from the
table's float32 vectors, so the scores returned are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from dlk_assets.lake.vector_scan import (
    Neighbours,
    VectorScan,
    top_k,
    unit_query,
    unit_rows,
)

EXACT_MAX_ROWS = 4_096
CANDIDATES_PER_K = 100
MIN_CANDIDATES = 1_000
_RESCORE_MARGIN = 8


def candidates(k: int) -> int:
    """How many rows the pooled first pass hands to exact MaxSim for a top-`k` search."""
    return max(MIN_CANDIDATES, CANDIDATES_PER_K * k)


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    """The blocks as one array, each block let go once copied: the peak is the whole plus one block,
    where `np.concatenate` holds the whole twice (about 7.6 GiB more at a million rows of 32 x 128)."""
    if not blocks:
        return np.empty((0, 0), np.float16)
    joined = np.empty((sum(len(block) for block in blocks), blocks[0].shape[1]), dtype=blocks[0].dtype)
    at = 0
    blocks.reverse()
    while blocks:
        block = blocks.pop()
        joined[at:at + len(block)] = block
        at += len(block)
    return joined


class MaxSimScan:
    """Top-k rows by MaxSim for one multi-vector column (rows given as token matrices)."""

    def __init__(self, blocks: Iterable[list[np.ndarray]], read_bags: Callable[[np.ndarray], list[np.ndarray]], seed: int = 0):
        """`blocks`: the rows' token vectors (tokens x dim each), a block of rows at a time, so only one
        block is ever held as float32; `read_bags(rows)` reads the stored float32 vectors of a few rows
        back, for exact final scores."""
        self._read_bags = read_bags
        counts, tokens, pooled = [], [], []
        for bags in blocks:
            sizes = np.fromiter((len(bag) for bag in bags), dtype=np.int64, count=len(bags))
            dim = bags[0].shape[-1] if len(bags) else 0
            block = unit_rows(np.concatenate(bags).astype(np.float32).reshape(-1, dim)) if sizes.sum() else np.empty((0, dim), np.float32)
            means = np.zeros((len(bags), dim), dtype=np.float32)
            filled = sizes > 0
            if filled.any():
                starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
                means[filled] = np.add.reduceat(block, starts[filled], axis=0) / sizes[filled, None]
            counts.append(sizes)
            tokens.append(block.astype(np.float16))
            pooled.append(means)
        sizes = np.concatenate(counts) if counts else np.empty(0, np.int64)
        self.rows = len(sizes)
        self._starts = np.concatenate(([0], np.cumsum(sizes)))
        self._tokens = _joined(tokens)
        self._pooled = VectorScan(np.concatenate(pooled), seed) if self.rows > EXACT_MAX_ROWS else None

    def wait_built(self, timeout: float | None = None) -> bool:
        """Always built: the pooled vectors' scan is built before the first search (no background work)."""
        return True

    @property
    def nbytes(self) -> int:
        """Bytes this scan holds (tokens, offsets and the pooled first pass)."""
        return self._tokens.nbytes + self._starts.nbytes + (self._pooled.nbytes if self._pooled else 0)

    def describe(self) -> str:
        """One line for logs and metadata: how searches are answered."""
        if self._pooled is None:
            return f"exact MaxSim over {self.rows} rows"
        return (f"MaxSim over {self.rows} rows: pooled first pass ({self._pooled.describe()}), "
                f"then exact MaxSim on the best max({MIN_CANDIDATES}, {CANDIDATES_PER_K} x k)")

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Neighbours:
        """The `k` rows with the highest MaxSim against the query tokens (only `allowed` rows when given)."""
        query = unit_query(query)
        if self._pooled is None or (allowed is not None and len(allowed) <= candidates(k)):
            rows = np.arange(self.rows) if allowed is None else np.asarray(allowed, dtype=np.int64)
        else:
            rows = np.sort(self._pooled.search(query.sum(axis=0), candidates(k), allowed).rows)
        if not len(rows):
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        # A margin past k lets the exact re-score reorder rows the float16 scores put just outside.
        shortlist = rows[top_k(self._approximate(query, rows), k + _RESCORE_MARGIN)]
        scores = np.array([_maxsim(query, bag) for bag in self._read_bags(shortlist)], dtype=np.float32)
        best = top_k(scores, k)
        return Neighbours(shortlist[best], scores[best])

    def _approximate(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        starts, ends = self._starts[rows], self._starts[rows + 1]
        counts = ends - starts
        # Every token of the chosen rows, in row order: offsets within each row plus the row's start.
        token_at = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(counts.sum())
        similarities = self._tokens[token_at].astype(np.float32) @ query.T  # (tokens, query tokens)
        scores = np.zeros(len(rows), dtype=np.float32)
        filled = counts > 0
        if filled.any():
            segment_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[filled]
            scores[filled] = np.maximum.reduceat(similarities, segment_starts, axis=0).sum(axis=1)
        return scores


def _maxsim(query: np.ndarray, bag: np.ndarray) -> float:
    """Deep Lake's MAXSIM for one row: the sum over (unit) query tokens of the best cosine."""
    tokens = unit_rows(np.array(bag, dtype=np.float32).reshape(-1, query.shape[-1]))
    return float((tokens @ query.T).max(axis=0).sum()) if len(tokens) else 0.0
