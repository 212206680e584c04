"""Rank fusion for hybrid search.

Deep Lake's BM25 gives an order but no score, so hybrid search fuses *ranks*: weighted reciprocal
rank fusion (Cormack et al., 2009). A row at 1-based rank r in a list with weight w earns
w / (RRF_K + r); a row's fused score is the sum over the lists it appears in; ties keep the order
in which rows were first seen. RRF_K = 60 is the paper's constant: it flattens the difference
between ranks 1 and 2 so one list's top hit cannot drown the other list.
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], weights: Sequence[float], rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse ranked key lists into one ranking of (key, score), best first."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    if any(w < 0 for w in weights) or not any(weights):
        raise ValueError(f"weights must be >= 0 and not all zero, got {list(weights)}")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (rrf_k + rank)
    order = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))
