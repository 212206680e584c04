"""Search a text column three ways: BM25 (exact words), vector (meaning), hybrid (both, re-scored together).

Shared by every text source (agent memory, documents); each names its text column and what a hit carries.

- BM25 runs on a bm25-indexed text column. The query's stop words are dropped on this side only
  (see `retrieval.keywords`).
- Vector is `Table.search` on `embedding`: exact cosine on the embedded engine (an inverted file with
  calibrated recall from 100k rows), pg_deeplake's index with an exact re-rank of 10x over-fetch on PG.
- Hybrid takes the top `2k` (at least 10) of each leg and scores their union exactly
  (`retrieval.fusion.identifier_fusion`): cosine to the query, plus 0.5 x the share of the query's terms
  that are identifiers found in the row's text. BM25 brings the rows that contain the query's exact
  identifiers; cosine orders everything. On probes written apart from the sample (held-out split,
  80 probes) it gives precision@5 / hit@1 0.960 / 0.975 against vector 0.960 / 0.975 and BM25
  0.738 / 0.800, where rank fusion gave 0.882 / 0.912; on memory.yaml 0.776 / 0.882 (rank fusion
  0.765 / 0.941). Why, and every fusion measured: `retrieval/fusion.py`.
The query text is only ever data: a quoted literal for BM25, an encoded vector for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Table
from dlk_assets.retrieval.filters import InvalidSearchInput
from dlk_assets.retrieval.fusion import (
    IDENTIFIER_WEIGHT,
    identifier_fusion,
    reciprocal_rank_fusion,
)
from dlk_assets.retrieval.keywords import keyword_text, query_terms
from dlk_assets.retrieval.requests import (
    MAX_K,
    Hit,
    KeywordSearch,
    VectorSearch,
    check_k,
    check_query_text,
)

MODES = ("hybrid", "bm25", "vector")
DEFAULT_WEIGHTS = (0.5, 0.5)  # (bm25, vector): `fuse`'s rank fusion, for callers with ranks only
VECTOR_COLUMN = "embedding"


def bm25_hits(table: Table, query: str, k: int, column: str, select: tuple[str, ...]) -> list[Hit]:
    """Top-k by BM25 on `column` (no scores: Deep Lake only orders by BM25)."""
    return table.keyword_search(KeywordSearch(column, keyword_text(query), k, select))


def _cosine_hits(table: Table, vector: np.ndarray, k: int, select: tuple[str, ...]) -> list[Hit]:
    """Top-k by cosine to `vector`, scored: `Table.search` ranks exactly (or with the recall its table
    states, `Table.describe_search`)."""
    return table.search(VectorSearch(VECTOR_COLUMN, vector, "vector", k, None, select))


def vector_hits(table: Table, encoder: Encoder, query: str, k: int, select: tuple[str, ...]) -> list[Hit]:
    """Top-k by cosine to the query's embedding."""
    return _cosine_hits(table, encoder.encode_pooled([query])[0], k, select)


def fusion_depth(k: int) -> int:
    """How deep each leg of a hybrid search goes for a final top-k."""
    return min(max(2 * k, 10), MAX_K)


def fuse(keyword: list[Hit], semantic: list[Hit], k: int, weights: tuple[float, float] = DEFAULT_WEIGHTS) -> list[Hit]:
    """The top k of a BM25 and a vector ranking fused by weighted reciprocal rank; score = the fused score.

    For callers that have the two rankings only; `hybrid_hits` scores the union exactly instead, which
    measured better (`retrieval/fusion.py`)."""
    values = {hit.row_key: hit.values for hit in (*semantic, *keyword)}
    fused = reciprocal_rank_fusion([[h.row_key for h in keyword], [h.row_key for h in semantic]], weights)[:k]
    return [Hit(rank, key, score, values[key]) for rank, (key, score) in enumerate(fused, start=1)]


def rescore_union(semantic: list[Hit], keyword: list[Hit], vector: np.ndarray, query: str, k: int,
                  identifier_weight: float = IDENTIFIER_WEIGHT, *, text_column: str, select: tuple[str, ...],
                  vector_column: str = VECTOR_COLUMN) -> list[Hit]:
    """The top k of the union of a vector leg (`semantic`, scored by cosine, carrying `text_column`) and a
    BM25 leg (`keyword`, carrying `text_column` and `vector_column`), by cosine to `vector` +
    identifier_weight x the share of the query's terms that are identifiers found in the row's text
    (`fusion.identifier_fusion`); score = that combined score, hits carry `select`.

    A row only BM25 found is scored by its true cosine (from the vector it carries), not by a missing rank."""
    if keyword:
        stacked = np.stack([np.asarray(hit.values[vector_column], dtype=np.float32) for hit in keyword])
        norms = np.linalg.norm(stacked, axis=1) * float(np.linalg.norm(vector))
        cosines = (stacked @ np.asarray(vector, dtype=np.float32)) / np.where(norms > 0, norms, 1.0)
    else:
        cosines = ()
    candidates = [*((hit.row_key, hit.score, hit.values[text_column] or "") for hit in semantic),
                  *((hit.row_key, float(cosine), hit.values[text_column] or "") for hit, cosine in zip(keyword, cosines))]
    values = {hit.row_key: hit.values for hit in (*keyword, *semantic)}
    fused = identifier_fusion(candidates, query_terms(query), k, identifier_weight)
    return [Hit(rank, key, score, {n: values[key][n] for n in select}) for rank, (key, score) in enumerate(fused, start=1)]


def hybrid_hits(table: Table, encoder: Encoder, query: str, k: int, identifier_weight: float = IDENTIFIER_WEIGHT, *,
                text_column: str, select: tuple[str, ...]) -> list[Hit]:
    """Top-k of the union of BM25 on `text_column` and vector, each `fusion_depth(k)` deep, re-scored by
    `rescore_union`. The BM25 leg also fetches its rows' vectors; the extra work is per candidate,
    never per stored row."""
    depth = fusion_depth(k)
    vector = encoder.encode_pooled([query])[0]
    columns = tuple(dict.fromkeys((*select, text_column)))
    semantic = _cosine_hits(table, vector, depth, columns)
    keyword = table.keyword_search(KeywordSearch(text_column, keyword_text(query), depth,
                                                 tuple(dict.fromkeys((*columns, VECTOR_COLUMN)))))
    return rescore_union(semantic, keyword, vector, query, k, identifier_weight, text_column=text_column, select=select)


@dataclass(frozen=True)
class TextSearch:
    """One source's search in `MODES` over its text column, callable as `SearchSpec.run`:
    `(table, encoder, query, mode, k, where, select)`. An empty query, an unknown mode or a filter is refused."""

    source: str  # how errors name the source
    text_column: str  # the bm25-indexed column
    select: tuple[str, ...]  # what a hit carries unless the caller asks for other columns

    def __call__(self, table: Table, encoder: Encoder, query: str, mode: str = "hybrid", k: int = 10,
                 where: str | None = None, select: tuple[str, ...] | None = None,
                 identifier_weight: float = IDENTIFIER_WEIGHT) -> list[Hit]:
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
        return hybrid_hits(table, encoder, query, k, identifier_weight, text_column=self.text_column, select=columns)
