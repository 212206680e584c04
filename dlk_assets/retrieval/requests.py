"""What a search asks for and what it returns, independent of the engine that runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlk_assets.retrieval.filters import Filter

MODES = ("maxsim", "vector")


@dataclass(frozen=True)
class VectorSearch:
    """Rank rows by similarity of `column` to `query`: MaxSim for multi-vectors, cosine for vectors."""

    column: str
    query: np.ndarray  # (tokens, dim) for maxsim, (dim,) for vector
    mode: str = "maxsim"
    k: int = 10
    where: Filter | None = None
    select: tuple[str, ...] = ()

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown search mode {self.mode!r}; choose one of {MODES}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")


@dataclass(frozen=True)
class Hit:
    """One ranked row: rank from 1, the engine's score, and the selected values."""

    rank: int
    row_key: str
    score: float
    values: dict[str, Any] = field(default_factory=dict)
