"""Slices without Dagster: slices.yaml validation and the keep rules (score cutoffs, dedupe) of relevance.py."""

import numpy as np
import pytest

from dlk_assets.defs.slices.relevance import (
    BELOW_MIN_SCORE,
    BELOW_RELATIVE_CUTOFF,
    DUPLICATE,
    Candidate,
    Relevance,
    pooled_vector,
    select,
)
from dlk_assets.defs.slices.specs import load_slices

SOURCES = {"coco": ("maxsim",), "videos": ("maxsim",)}


def hits(*scores, shas=None, vectors=None):
    """Candidates in search order: rank from 1, a distinct sha256 each unless `shas` says otherwise."""
    shas = shas or [f"sha-{i}" for i in range(len(scores))]
    vectors = vectors or [None] * len(scores)
    return [Candidate(rank=i + 1, row_key=f"row:{i + 1}", score=s, sha256=h, vector=v)
            for i, (s, h, v) in enumerate(zip(scores, shas, vectors, strict=True))]


def ranks(decisions):
    return [d.candidate.rank for d in decisions]


def write_slices(tmp_path, body: str):
    path = tmp_path / "slices.yaml"
    path.write_text("slices:\n  bad:\n    source: coco\n    query: a cat\n" + body)
    return path


def test_the_shipped_slices_load_with_their_keep_rules():
    specs = load_slices(sources=SOURCES)
    for name, spec in specs.items():  # every shipped slice keeps only hits near its top one
        assert spec.relevance == Relevance(min_relative_score=0.75, dedupe=True), name
    # A slice without rules is its top k, as before the rules existed.
    assert Relevance().describe() == "none (top k)"


def test_keep_rules_load_from_yaml(tmp_path):
    path = write_slices(tmp_path, "    min_score: 1\n    min_relative_score: 0.5\n    dedupe: true\n    dedupe_similarity: 0.95\n")
    spec = load_slices(path, SOURCES)["bad"]
    assert spec.relevance == Relevance(min_score=1, min_relative_score=0.5, dedupe=True, dedupe_similarity=0.95)
    assert spec.relevance.describe() == "min_score 1, min_relative_score 0.5, dedupe sha256 + similarity >= 0.95"


@pytest.mark.parametrize(("body", "field"), [
    ("    min_score: high\n", "min_score"),
    ("    min_score: true\n", "min_score"),  # YAML's true is not the number 1
    ("    min_score: .nan\n", "min_score"),
    ("    min_relative_score: 0\n", "min_relative_score"),
    ("    min_relative_score: 1.5\n", "min_relative_score"),
    ("    min_relative_score: '0.9'\n", "min_relative_score"),
    ("    dedupe: 'yes'\n", "dedupe"),
    ("    dedupe: 1\n", "dedupe"),
    ("    dedupe: true\n    dedupe_similarity: 1.2\n", "dedupe_similarity"),
    ("    dedupe_similarity: 0.9\n", "dedupe_similarity"),  # needs dedupe: true
    ("    min_relative: 0.9\n", "min_relative"),  # a misspelt field is refused, not ignored
])
def test_bad_keep_rules_are_refused_naming_the_slice_and_the_field(tmp_path, body, field):
    path = write_slices(tmp_path, body)
    with pytest.raises(ValueError, match=f"slice 'bad'.*'{field}'") as error:
        load_slices(path, SOURCES)
    assert str(path) in str(error.value)


def test_without_rules_the_top_k_are_kept_whatever_they_score():
    selection = select(hits(2.0, 0.1, 0.05), Relevance(), k=2)
    assert ranks(selection.kept) == [1, 2] and selection.cut == [] and not selection.wants_more
    assert selection.kept[1].why == {"score": 0.1, "relative_to_top": pytest.approx(0.05),
                                     "reason": "search rank 2; no keep rules set"}


def test_the_relative_cutoff_keeps_hits_close_to_the_top_and_says_why():
    # The shapes measured on the sample: the cat at 2.0844, the horse silhouette at 0.513 x it.
    selection = select(hits(2.0844, 1.9, 1.0695), Relevance(min_relative_score=0.75), k=3)
    assert ranks(selection.kept) == [1, 2] and ranks(selection.cut) == [3]
    assert selection.top_score == 2.0844
    assert selection.kept[1].why["relative_to_top"] == pytest.approx(1.9 / 2.0844)
    assert "0.912 x the top score >= min_relative_score 0.75" in selection.kept[1].why["reason"]
    horse = selection.cut[0].why
    assert horse["reason"] == BELOW_RELATIVE_CUTOFF and horse["relative_to_top"] == pytest.approx(0.5131, abs=1e-4)
    assert horse["detail"] == "score 1.0695 is 0.513 x the top hit's 2.0844, under min_relative_score 0.75"
    assert not selection.wants_more  # the walk ended on a score: a wider search cannot add anything


def test_the_relative_cutoff_does_not_move_with_the_score_scale():
    # MaxSim sums over query tokens: a query three times as long scores about three times higher.
    short = select(hits(2.08, 1.6, 1.07), Relevance(min_relative_score=0.75), k=3)
    long = select(hits(6.24, 4.8, 3.21), Relevance(min_relative_score=0.75), k=3)
    assert ranks(short.kept) == ranks(long.kept) == [1, 2]
    # An absolute floor that suits one of them does not suit the other.
    assert ranks(select(hits(2.08, 1.6, 1.07), Relevance(min_score=2.0), k=3).kept) == [1]
    assert ranks(select(hits(6.24, 4.8, 3.21), Relevance(min_score=2.0), k=3).kept) == [1, 2, 3]


def test_the_absolute_floor_cuts_first_and_both_rules_must_pass():
    selection = select(hits(3.0, 2.5, 1.5, 0.5), Relevance(min_score=2.0, min_relative_score=0.6), k=4)
    assert ranks(selection.kept) == [1, 2]
    assert [d.why["reason"] for d in selection.cut] == [BELOW_MIN_SCORE, BELOW_MIN_SCORE]
    assert selection.cut[0].why["detail"] == "score 1.5000 is under min_score 2"
    relative_only = select(hits(3.0, 2.5, 1.5), Relevance(min_score=1.0, min_relative_score=0.6), k=3)
    assert [d.why["reason"] for d in relative_only.cut] == [BELOW_RELATIVE_CUTOFF]


def test_hits_past_k_are_not_reported_as_cut_by_score():
    # Only the first k were ever candidates for the slice; what lies below them is not news.
    selection = select(hits(2.0, 0.5, 0.4, 0.3), Relevance(min_relative_score=0.75), k=2)
    assert ranks(selection.kept) == [1] and ranks(selection.cut) == [2]


def test_a_top_score_of_zero_or_below_keeps_nothing_under_a_relative_cutoff():
    selection = select(hits(0.0, -0.5), Relevance(min_relative_score=0.5), k=2)
    assert selection.kept == [] and [d.why["reason"] for d in selection.cut] == [BELOW_RELATIVE_CUTOFF] * 2
    assert selection.cut[0].why["relative_to_top"] is None and "not above 0" in selection.cut[0].why["detail"]


def test_score_rules_refuse_a_search_without_scores_naming_the_field():
    with pytest.raises(ValueError, match="field 'min_relative_score' needs scores"):
        select(hits(None, None), Relevance(min_relative_score=0.5), k=2)
    # dedupe reads no scores, so it works for a mode that gives none (BM25 in some engines)
    assert ranks(select(hits(None, None), Relevance(dedupe=True), k=2).kept) == [1, 2]


def test_dedupe_drops_a_file_already_kept_and_asks_for_more_hits():
    selection = select(hits(3.0, 2.9, 2.8, shas=["a", "a", "b"]), Relevance(dedupe=True), k=3)
    assert ranks(selection.kept) == [1, 3]
    copy = selection.cut[0].why
    assert (copy["reason"], copy["match"], copy["duplicate_of_rank"], copy["duplicate_of_row_key"]) == (DUPLICATE, "sha256", 1, "row:1")
    assert copy["detail"] == "same file (sha256) as rank 1"
    assert selection.wants_more  # short only because of a duplicate: a wider search can fill it
    # Given more hits the duplicate's place goes to the next distinct one, and the walk stops at k.
    wider = select(hits(3.0, 2.9, 2.8, 2.7, 2.6, shas=["a", "a", "b", "c", "d"]), Relevance(dedupe=True), k=3)
    assert ranks(wider.kept) == [1, 3, 4] and ranks(wider.cut) == [2] and not wider.wants_more


def test_without_dedupe_identical_files_are_both_kept():
    assert ranks(select(hits(3.0, 2.9, shas=["a", "a"]), Relevance(), k=2).kept) == [1, 2]


def test_dedupe_similarity_drops_near_identical_vectors_only():
    rng = np.random.default_rng(0)
    bag = rng.normal(size=(5, 64))
    copy = bag + rng.normal(scale=0.05, size=bag.shape)  # the same item, encoded again with a little noise
    other = rng.normal(size=(5, 64))
    vectors = [pooled_vector(b) for b in (bag, copy, other)]
    assert float(vectors[0] @ vectors[1]) > 0.99 and abs(float(vectors[0] @ vectors[2])) < 0.5
    rules = Relevance(dedupe=True, dedupe_similarity=0.95)
    selection = select(hits(3.0, 2.9, 2.8, vectors=vectors), rules, k=3)
    assert ranks(selection.kept) == [1, 3]
    near = selection.cut[0].why
    assert (near["reason"], near["match"], near["duplicate_of_rank"]) == (DUPLICATE, "similarity", 1)
    assert near["similarity"] > 0.99 and "dedupe_similarity 0.95" in near["detail"]
    # sha256 alone does not see it: the files differ.
    assert ranks(select(hits(3.0, 2.9, 2.8, vectors=vectors), Relevance(dedupe=True), k=3).kept) == [1, 2, 3]


def test_a_pooled_vector_is_the_unit_mean_of_unit_rows():
    bag = np.array([[3.0, 0.0], [0.0, 0.5]])  # the long row does not outweigh the short one
    assert np.allclose(pooled_vector(bag), [2 ** -0.5, 2 ** -0.5])
    assert np.allclose(pooled_vector(np.array([0.0, 4.0])), [0.0, 1.0])
    assert np.allclose(pooled_vector(np.zeros((2, 3))), 0.0)  # nothing to compare: matches nothing
