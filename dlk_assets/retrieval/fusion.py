"""Fusion for hybrid search: how a BM25 and a vector ranking become one.

Hybrid text search (`retrieval.text_modes`) uses `identifier_fusion`: every candidate either leg found is
scored exactly by

    score = cosine(query, row) + IDENTIFIER_WEIGHT * (identifier terms of the query found in the row's text)
                                                    / (terms of the query)

Cosine carries meaning and is comparable across rows (unit vectors), so it decides among candidates;
the lexical term adds what cosine misses, an exact identifier (`X-Forwarded-Host`, `RFC 6531`): a
query that is only that identifier moves a row containing it up by 0.5, more than any cosine gap
between related rows, while one identifier among ten words of prose moves it by 0.05, enough to break
near ties only. Words of prose earn nothing: without corpus statistics (Deep Lake's BM25 returns no
score and no term frequencies) a shared common word is as likely to be noise as evidence.

Measured on the SWE-trace sample with MiniLM, precision@5 / hit@1 at k = 5 (`benchmarks/eval_hybrid.py`;
probes: dlk_assets_tests/data/memory_probes_{tuning,heldout}.yaml and dlk_assets/data/probes/memory.yaml):

    split (probes)        bm25           vector         RRF 0.5/0.5 (before)   identifier fusion (now)
    tuning (79)           0.729 / 0.785  0.952 / 0.987  0.861 / 0.949          0.952 / 0.987
    held-out (80)         0.738 / 0.800  0.960 / 0.975  0.882 / 0.912          0.960 / 0.975
    memory.yaml (17)      0.553 / 0.765  0.729 / 0.765  0.765 / 0.941          0.776 / 0.882

(Re-measured 2026-11-22 with `eval_hybrid.py`; rank fusion's own numbers move a little between runs
with Deep Lake's BM25 tie order. On memory.yaml's 17 queries rank fusion gets one more first hit in
six, 16 of 17 against 15; on the held-out split it loses 7 points of precision.)

Why this fusion (alternatives scored on the tuning split over the same two legs, memory.yaml beside):
rank fusion lets a BM25 hit that shares one common word with a paraphrased bug report (`logging` in
"I keep logging in") rank with the vector leg's best rows, so hybrid lost to vector on paraphrases;
RRF with leg weights 0.1 / 0.9 still lost (0.937 / 0.975), and so did RRF whose weights follow a
keyword-query detector (0.7 / 0.3 for identifier queries, else 0.1 / 0.9: 0.937 / 0.975). Normalized
score fusion (min-max or z-score of cosine and of a rank-derived BM25 score, BM25 weight 0.1) tied
vector on tuning but fell below it on memory.yaml (0.753 / 0.824). A bonus for prose words shared
with the row (weight 0.2) changed three tuning queries, one for the better and two for the worse, and
none at 0.05 to 0.1, so prose words get no weight. The identifier weight is the middle of the range
that ties vector on tuning and is best on memory.yaml (0.3 to 1.0 give the same numbers). Held-out is
reported, not tuned on (while the options were compared, its totals for an earlier, smaller probe set
were seen: prose-word bonuses at 0.05 to 0.2 were 2 hits of 265 below vector there).

Both hybrid searches use it: agent memory and documents (`text_modes.hybrid_hits`) and the vector
service's datasets (`vectors.store`, whose vectors need not be unit length: cosines are computed as such).
`reciprocal_rank_fusion` (Cormack et al., 2009) stays as the baseline the evaluation compares against:
a row at 1-based rank r in a list with weight w earns w / (RRF_K + r); RRF_K = 60 is the paper's constant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dlk_assets.retrieval.keywords import text_terms

RRF_K = 60
IDENTIFIER_WEIGHT = 0.5


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], weights: Sequence[float], rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse ranked key lists into one ranking of (key, score), best first; ties keep first-seen order."""
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


def identifier_match(terms: Mapping[str, bool], text: str) -> float:
    """The share of the query's terms (`keywords.query_terms`) that are identifiers and occur in `text`."""
    if not terms:
        return 0.0
    found = text_terms(text)
    return sum(1 for term, identifier in terms.items() if identifier and term in found) / len(terms)


def identifier_fusion(candidates: Sequence[tuple[str, float, str]], terms: Mapping[str, bool], k: int,
                      identifier_weight: float = IDENTIFIER_WEIGHT) -> list[tuple[str, float]]:
    """The top k of `(key, cosine, text)` candidates (the union of both legs; a key seen twice counts
    once) by cosine + identifier_weight * `identifier_match`, as (key, score); ties keep first-seen order.

    Work is per candidate (at most the two legs' depth), never per stored row."""
    if identifier_weight < 0:
        raise ValueError(f"identifier_weight must be >= 0, got {identifier_weight}")
    scores: dict[str, float] = {}
    for key, cosine, text in candidates:
        if key not in scores:
            scores[key] = float(cosine) + (identifier_weight * identifier_match(terms, text) if identifier_weight else 0.0)
    order = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))[:k]
