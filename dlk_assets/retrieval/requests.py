"""What a search asks for and what it returns, independent of the engine that runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlk_assets.retrieval.filters import Filter, InvalidSearchInput

MODES = ("maxsim", "vector")
MAX_K = 10_000
MAX_QUERY_CHARS = 10_000


def check_k(k: int) -> int:
    """`k` as an int within 1..MAX_K, or `InvalidSearchInput`."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidSearchInput(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return k


def check_query_text(text: str) -> str:
    """Query text that is non-empty and at most MAX_QUERY_CHARS long, or `InvalidSearchInput`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSearchInput("the query text is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidSearchInput(f"the query text is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}")
    return text


@dataclass(frozen=True)
class VectorSearch:
    """Rank rows by similarity of `column` to `query`: MaxSim for multi-vectors, cosine for vectors."""

    column: str
    query: np.ndarray  # (tokens, dim) for maxsim, (dim,) for vector
    mode: str = "maxsim"
    k: int = 10
    where: Filter | None = None
    select: tuple[str, ...] = ()
    # Leave the engine's score out when the caller re-scores the candidates itself: fetching the
    # score column costs Deep Lake about as much as fetching every other column.
    with_scores: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown search mode {self.mode!r}; choose one of {MODES}")
        check_k(self.k)


@dataclass(frozen=True)
class KeywordSearch:
    """Rank rows by BM25 of `column` (which needs a bm25 index) against the words of `text`.

    `text` is data: it is quoted as a string literal, never spliced into the query as code.
    """

    column: str
    text: str
    k: int = 10
    select: tuple[str, ...] = ()
    where: Filter | None = None

    def __post_init__(self):
        check_query_text(self.text)
        check_k(self.k)


@dataclass(frozen=True)
class Hit:
    """One ranked row: rank from 1, a score (None where the engine gives none, as for BM25), and values."""

    rank: int
    row_key: str
    score: float | None
    values: dict[str, Any] = field(default_factory=dict)
