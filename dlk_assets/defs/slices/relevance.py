"""Which of a slice's search hits it keeps: score cutoffs and duplicate removal, as pure functions.

A slice no longer always fills `k`. Walking the hits best first, an item is cut when

- its score is under `min_score` (an absolute floor on the search's own score scale);
- its score is under `min_relative_score` x the top hit's score (a floor that follows the query:
  MaxSim scores are sums over the query's tokens, so a longer query scores higher everywhere);
- `dedupe` is on and it duplicates an item already kept: the same file bytes (sha256), or, with
  `dedupe_similarity`, a pooled vector whose cosine with a kept item's reaches that similarity.

The walk stops once `k` items are kept. Every one of the first `k` hits is accounted for, kept or
cut; past `k` only duplicates are reported (they are what a wider search skipped to fill the slice),
since a hit past `k` that fails a score cutoff would never have been in the slice anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BELOW_MIN_SCORE = "below_min_score"
BELOW_RELATIVE_CUTOFF = "below_relative_cutoff"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Relevance:
    """A slice's keep rules; all off by default (the slice is then its top `k`, as before)."""

    min_score: float | None = None
    min_relative_score: float | None = None
    dedupe: bool = False
    dedupe_similarity: float | None = None  # None: duplicates are identical files only

    @property
    def scored(self) -> bool:
        """Whether a rule reads hit scores (a search mode without scores cannot serve it)."""
        return self.min_score is not None or self.min_relative_score is not None

    def describe(self) -> str:
        """The rules in a few words, for metadata and logs."""
        parts = []
        if self.min_score is not None:
            parts.append(f"min_score {self.min_score:g}")
        if self.min_relative_score is not None:
            parts.append(f"min_relative_score {self.min_relative_score:g}")
        if self.dedupe:
            parts.append("dedupe sha256" + (f" + similarity >= {self.dedupe_similarity:g}" if self.dedupe_similarity else ""))
        return ", ".join(parts) or "none (top k)"


@dataclass(frozen=True)
class Candidate:
    """A search hit as the rules see it: rank, score, file identity and, for near-duplicates, a unit vector."""

    rank: int
    row_key: str
    score: float | None
    sha256: str
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class Decision:
    """What happened to one candidate: kept with `why`, or cut with `reason` and `detail` (in `why`)."""

    candidate: Candidate
    kept: bool
    why: dict[str, Any]


@dataclass(frozen=True)
class Selection:
    """The kept and cut candidates, in rank order."""

    kept: list[Decision]
    cut: list[Decision]
    top_score: float | None
    # True when more hits could still fill the slice: fewer than k kept and the walk ended on
    # duplicates, not on a hit under a score cutoff (every later hit scores no higher).
    wants_more: bool


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero, so it matches nothing)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def pooled_vector(bag: np.ndarray) -> np.ndarray:
    """A multi-vector (patches or frames, dim) as one unit vector: the mean of its unit rows (a
    single vector passes through, scaled to length 1).

    Unit rows first, so one long row cannot outweigh the rest of the bag.
    """
    bag = np.asarray(bag, dtype=np.float32)
    if bag.ndim == 1:
        return unit_rows(bag)
    return unit_rows(unit_rows(bag).mean(axis=0))


def _relative(score: float | None, top: float | None) -> float | None:
    # A ratio to a top score of zero or below says nothing about closeness, so it is left out.
    if score is None or top is None or top <= 0:
        return None
    return score / top


def _score_cut(candidate: Candidate, rules: Relevance, top: float | None) -> tuple[str, str] | None:
    score = candidate.score
    if rules.min_score is not None and score < rules.min_score:
        return BELOW_MIN_SCORE, f"score {score:.4f} is under min_score {rules.min_score:g}"
    if rules.min_relative_score is not None:
        if top is None or top <= 0:
            return BELOW_RELATIVE_CUTOFF, (f"the top hit scores {top:.4f}, not above 0, so no hit is within "
                                           f"min_relative_score {rules.min_relative_score:g} of a match")
        if score < rules.min_relative_score * top:
            return BELOW_RELATIVE_CUTOFF, (f"score {score:.4f} is {score / top:.3f} x the top hit's {top:.4f}, under "
                                           f"min_relative_score {rules.min_relative_score:g}")
    return None


def _duplicate_of(candidate: Candidate, kept: list[Decision], rules: Relevance) -> tuple[Candidate, str, float] | None:
    for decision in kept:  # identical bytes first: exact, and what every dedupe promises
        if decision.candidate.sha256 == candidate.sha256:
            return decision.candidate, "sha256", 1.0
    if rules.dedupe_similarity is None or candidate.vector is None:
        return None
    best: tuple[Candidate, str, float] | None = None
    for decision in kept:
        if decision.candidate.vector is None:
            continue
        similarity = float(np.dot(candidate.vector, decision.candidate.vector))
        if similarity >= rules.dedupe_similarity and (best is None or similarity > best[2]):
            best = (decision.candidate, "similarity", similarity)
    return best


def _kept_reason(candidate: Candidate, rules: Relevance, top: float | None) -> str:
    parts = [f"search rank {candidate.rank}"]
    if rules.min_score is not None:
        parts.append(f"score {candidate.score:.4f} >= min_score {rules.min_score:g}")
    if rules.min_relative_score is not None:
        parts.append(f"{candidate.score / top:.3f} x the top score >= min_relative_score {rules.min_relative_score:g}")
    if rules.dedupe:
        similar = f" and no pooled vector at cosine >= {rules.dedupe_similarity:g} to one" if rules.dedupe_similarity else ""
        parts.append(f"no item kept before it has its sha256{similar}")
    if len(parts) == 1:
        parts.append("no keep rules set")
    return "; ".join(parts)


def select(candidates: Sequence[Candidate], rules: Relevance, k: int) -> Selection:
    """Walk `candidates` (search order, best first) and keep at most `k` of them under `rules`.

    A cut's `why` holds `reason` (`below_min_score`, `below_relative_cutoff` or `duplicate`), a
    `detail` sentence and, for a duplicate, the rank and row key of the kept item it repeats and
    whether the sha256 or the pooled vector matched. `ValueError` names the field when a score rule
    meets a hit without a score.
    """
    if rules.scored:
        for candidate in candidates:
            if candidate.score is None:
                field = "min_score" if rules.min_score is not None else "min_relative_score"
                raise ValueError(f"field {field!r} needs scores, but hit {candidate.row_key} has none in this search mode")
    scores = [c.score for c in candidates if c.score is not None]
    top = max(scores) if scores else None
    kept: list[Decision] = []
    cut: list[Decision] = []
    ended_on_score = False
    for position, candidate in enumerate(candidates, start=1):
        if len(kept) == k:
            break
        base = {"score": candidate.score, "relative_to_top": _relative(candidate.score, top)}
        score_cut = _score_cut(candidate, rules, top) if rules.scored else None
        if score_cut:
            if position > k:  # never in the top k, and every later hit scores no higher
                ended_on_score = True
                break
            cut.append(Decision(candidate, False, {**base, "reason": score_cut[0], "detail": score_cut[1]}))
            ended_on_score = True
            continue
        duplicate = _duplicate_of(candidate, kept, rules) if rules.dedupe else None
        if duplicate:
            original, match, similarity = duplicate
            detail = (f"same file (sha256) as rank {original.rank}" if match == "sha256" else
                      f"pooled vector {similarity:.4f} similar to rank {original.rank}'s (dedupe_similarity {rules.dedupe_similarity:g})")
            cut.append(Decision(candidate, False, {**base, "reason": DUPLICATE, "detail": detail, "match": match,
                                                   "similarity": round(similarity, 6), "duplicate_of_rank": original.rank,
                                                   "duplicate_of_row_key": original.row_key}))
            continue
        kept.append(Decision(candidate, True, {**base, "reason": _kept_reason(candidate, rules, top)}))
    return Selection(kept=kept, cut=cut, top_score=top, wants_more=len(kept) < k and not ended_on_score)
