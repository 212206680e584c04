"""Search agent memory three ways: BM25 (exact words), vector (meaning), hybrid (both, fused by rank).

- BM25 runs on a bm25-indexed text column (`task` by default; `errors` for similar failures). The
  query's stop words are dropped on this side only (see `retrieval.keywords`).
- Vector over-fetches candidates from the clustered index and re-ranks them exactly by cosine,
  because the index alone misses part of the true top-k (PERF.md: recall 0.73 at 100k).
- Hybrid takes the top `2k` (at least 10) of each side and fuses them with weighted reciprocal
  rank fusion (`retrieval.fusion`, RRF_K = 60, weights BM25 0.5 / vector 0.5 by default).
The query text is only ever data: a quoted literal for BM25, an encoded vector for the rest.
"""

from __future__ import annotations

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
RESULT_COLUMNS = ("run_id", "agent", "model", "date", "task", "episode", "trial_name", "outcome", "errors", "summary")
DEFAULT_WEIGHTS = (0.5, 0.5)  # (bm25, vector)
VECTOR_OVERFETCH, MIN_VECTOR_CANDIDATES = 10, 100


def bm25_hits(table: Table, query: str, k: int, column: str = "task", select: tuple[str, ...] = RESULT_COLUMNS) -> list[Hit]:
    """Top-k by BM25 on `column` (no scores: Deep Lake only orders by BM25)."""
    return table.keyword_search(KeywordSearch(column, keyword_text(query), k, select))


def vector_hits(table: Table, encoder: Encoder, query: str, k: int, select: tuple[str, ...] = RESULT_COLUMNS) -> list[Hit]:
    """Top-k by exact cosine among candidates over-fetched from the clustered index."""
    vector = encoder.encode_pooled([query])[0]
    fetch = min(max(k * VECTOR_OVERFETCH, MIN_VECTOR_CANDIDATES), MAX_K)
    candidates = table.search(VectorSearch("embedding", vector, "vector", fetch, None, (*select, "embedding"), with_scores=False))
    if not candidates:
        return []
    exact = np.stack([hit.values["embedding"] for hit in candidates]) @ vector
    order = sorted(range(len(candidates)), key=lambda i: (-exact[i], candidates[i].row_key))[:k]
    return [Hit(rank, candidates[i].row_key, float(exact[i]), {n: candidates[i].values[n] for n in select})
            for rank, i in enumerate(order, start=1)]


def hybrid_hits(table: Table, encoder: Encoder, query: str, k: int, weights: tuple[float, float] = DEFAULT_WEIGHTS,
                text_column: str = "task", select: tuple[str, ...] = RESULT_COLUMNS) -> list[Hit]:
    """Top-k of BM25 and vector fused by weighted reciprocal rank; score = the fused RRF score."""
    depth = min(max(2 * k, 10), MAX_K)
    keyword, semantic = bm25_hits(table, query, depth, text_column, select), vector_hits(table, encoder, query, depth, select)
    values = {hit.row_key: hit.values for hit in (*semantic, *keyword)}
    fused = reciprocal_rank_fusion([[h.row_key for h in keyword], [h.row_key for h in semantic]], weights)[:k]
    return [Hit(rank, key, score, values[key]) for rank, (key, score) in enumerate(fused, start=1)]


def search_memory(table: Table, encoder: Encoder, query: str, mode: str = "hybrid", k: int = 10, where: str | None = None,
                  select: tuple[str, ...] = RESULT_COLUMNS, weights: tuple[float, float] = DEFAULT_WEIGHTS) -> list[Hit]:
    """Search memory in one of `MODES`; an empty query, an unknown mode or a filter is a `ValueError`."""
    if mode not in MODES:
        raise ValueError(f"unknown memory search mode {mode!r}; choose one of {MODES}")
    if where:
        raise InvalidSearchInput("--where is not supported for memory search")
    check_query_text(query)
    check_k(k)
    if mode == "bm25":
        return bm25_hits(table, query, k, select=select)
    if mode == "vector":
        return vector_hits(table, encoder, query, k, select)
    return hybrid_hits(table, encoder, query, k, weights, select=select)
