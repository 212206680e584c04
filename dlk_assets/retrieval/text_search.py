"""Text-to-multi-vector search shared by every image-like source: encode the query, MaxSim against a column."""

from __future__ import annotations

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Table
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import Hit, VectorSearch


def maxsim_text_search(table: Table, encoder: Encoder, query: str, mode: str, k: int, where: str | None,
                       select: tuple[str, ...], column: str = "embedding") -> list[Hit]:
    """Rank rows by MaxSim between the query's token vectors and each row's multi-vector (`mode` is maxsim)."""
    if not query.strip():
        raise ValueError("query text is empty")
    vectors = encoder.encode_query_tokens([query])[0]
    return table.search(VectorSearch(column, vectors, "maxsim", k, parse_filter(where), select))
