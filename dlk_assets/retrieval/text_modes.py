"""Search a text column three ways: BM25 (exact words), vector (meaning), hybrid (both, fused by rank).

Shared by every text source (agent memory, documents); each names its text column and what a hit carries.

- BM25 runs on a bm25-indexed text column. The query's stop words are dropped on this side only
  (see `retrieval.keywords`).
- Vector over-fetches candidates from the clustered index on `embedding` and re-ranks them exactly by
  cosine, because the index alone misses part of the true top-k (PERF.md: recall 0.73 at 100k).
- Hybrid takes the top `2k` (at least 10) of each side and fuses them with weighted reciprocal
  rank fusion (`retrieval.fusion`, RRF_K = 60, weights BM25 0.5 / vector 0.5 by default).
The query text is only ever data: a quoted literal for BM25, an encoded vector for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Table
from dlk_assets.retrieval.filters import InvalidSearchInput
from dlk_assets.retrieval.fusion import reciprocal_rank_fusion
from dlk_assets.retrieval.keywords import keyword_text
from dlk_assets.retrieval.requests import (
    MAX_K,
    Hit,
    KeywordSearch,
    VectorSearch,
    check_k,
    check_query_text,
)

MODES = ("hybrid", "bm25", "vector")
DEFAULT_WEIGHTS = (0.5, 0.5)  # (bm25, vector)
VECTOR_COLUMN = "embedding"
VECTOR_OVERFETCH, MIN_VECTOR_CANDIDATES = 10, 100


def bm25_hits(table: Table, query: str, k: int, column: str, select: tuple[str, ...]) -> list[Hit]:
    """Top-k by BM25 on `column` (no scores: Deep Lake only orders by BM25)."""
    return table.keyword_search(KeywordSearch(column, keyword_text(query), k, select))


def vector_hits(table: Table, encoder: Encoder, query: str, k: int, select: tuple[str, ...]) -> list[Hit]:
    """Top-k by exact cosine among candidates over-fetched from the clustered index."""
    vector = encoder.encode_pooled([query])[0]
    fetch = min(max(k * VECTOR_OVERFETCH, MIN_VECTOR_CANDIDATES), MAX_K)
    candidates = table.search(VectorSearch(VECTOR_COLUMN, vector, "vector", fetch, None, (*select, VECTOR_COLUMN),
                                           with_scores=False))
    if not candidates:
        return []
    exact = np.stack([hit.values[VECTOR_COLUMN] for hit in candidates]) @ vector
    order = sorted(range(len(candidates)), key=lambda i: (-exact[i], candidates[i].row_key))[:k]
    return [Hit(rank, candidates[i].row_key, float(exact[i]), {n: candidates[i].values[n] for n in select})
            for rank, i in enumerate(order, start=1)]


def fusion_depth(k: int) -> int:
    """How deep each leg of a hybrid search goes for a final top-k."""
    return min(max(2 * k, 10), MAX_K)


def fuse(keyword: list[Hit], semantic: list[Hit], k: int, weights: tuple[float, float] = DEFAULT_WEIGHTS) -> list[Hit]:
    """The top k of a BM25 and a vector ranking fused by weighted reciprocal rank; score = the fused score."""
    values = {hit.row_key: hit.values for hit in (*semantic, *keyword)}
    fused = reciprocal_rank_fusion([[h.row_key for h in keyword], [h.row_key for h in semantic]], weights)[:k]
    return [Hit(rank, key, score, values[key]) for rank, (key, score) in enumerate(fused, start=1)]


def hybrid_hits(table: Table, encoder: Encoder, query: str, k: int, weights: tuple[float, float] = DEFAULT_WEIGHTS, *,
                text_column: str, select: tuple[str, ...]) -> list[Hit]:
    """Top-k of BM25 on `text_column` and vector fused by weighted reciprocal rank; score = the fused RRF score."""
    depth = fusion_depth(k)
    return fuse(bm25_hits(table, query, depth, text_column, select), vector_hits(table, encoder, query, depth, select), k,
                weights)


@dataclass(frozen=True)
class TextSearch:
    """One source's search in `MODES` over its text column, callable as `SearchSpec.run`:
    `(table, encoder, query, mode, k, where, select)`. An empty query, an unknown mode or a filter is refused."""

    source: str  # how errors name the source
    text_column: str  # the bm25-indexed column
    select: tuple[str, ...]  # what a hit carries unless the caller asks for other columns

    def __call__(self, table: Table, encoder: Encoder, query: str, mode: str = "hybrid", k: int = 10,
                 where: str | None = None, select: tuple[str, ...] | None = None,
                 weights: tuple[float, float] = DEFAULT_WEIGHTS) -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"unknown {self.source} search mode {mode!r}; choose one of {MODES}")
        if where:
            raise InvalidSearchInput(f"--where is not supported for {self.source} search")
        check_query_text(query)
        check_k(k)
        columns = self.select if select is None else select
        if mode == "bm25":
            return bm25_hits(table, query, k, self.text_column, columns)
        if mode == "vector":
            return vector_hits(table, encoder, query, k, columns)
        return hybrid_hits(table, encoder, query, k, weights, text_column=self.text_column, select=columns)
