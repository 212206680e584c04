"""Hybrid fusion as pure functions: which query tokens count as identifiers, and how the union of both
legs is scored (the measured comparison on real traces is in test_swe_traces.py)."""

import pytest

from dlk_assets.retrieval.fusion import (
    IDENTIFIER_WEIGHT,
    identifier_fusion,
    identifier_match,
    reciprocal_rank_fusion,
)
from dlk_assets.retrieval.keywords import looks_like_identifier, query_terms, text_terms


@pytest.mark.parametrize("token", ["refresh_session_token", "TokenExpiredError", "X-Forwarded-Host", "0xe9;", "RFC",
                                   "USE_TZ", "app.config", "F('views')", "shutdown(wait=True)", "--verbose", "/etc/passwd",
                                   "NaN", "404", "int32", '"yaml.safe_load"'])
def test_code_tokens_look_like_identifiers(token):
    assert looks_like_identifier(token)


@pytest.mark.parametrize("token", ["logging", "Python", "cross-site", "read-only", "Windows,", "(sometimes)", "users'"])
def test_prose_words_do_not(token):
    assert not looks_like_identifier(token)


def test_query_terms_drop_stop_words_and_mark_identifiers():
    assert query_terms("Why does refresh_session_token raise TokenExpiredError: the token expired?") == {
        "refresh_session_token": True, "raise": False, "tokenexpirederror": True, "token": False, "expired": False}
    assert query_terms("the and of") == {}


def test_text_terms_hold_dotted_names_and_their_parts():
    terms = text_terms("Replace yaml.load with yaml.safe_load; trust X-Forwarded-Proto (byte 0xe9).")
    assert {"yaml.safe_load", "safe_load", "yaml", "x-forwarded-proto", "forwarded", "0xe9", "replace"} <= terms
    assert "0xe9)." not in terms and "yaml.safe_load;" not in terms


def test_identifier_match_is_the_share_of_query_terms_that_are_identifiers_found():
    terms = query_terms("validate_csrf_token rejects posts behind the proxy")  # 5 terms, 1 identifier
    assert identifier_match(terms, "validate_csrf_token ignores X-Forwarded-Host") == pytest.approx(1 / 5)
    assert identifier_match(terms, "rejects posts behind a proxy") == 0.0  # prose overlap earns nothing
    assert identifier_match({}, "anything") == 0.0


def test_an_identifier_query_lifts_the_row_that_contains_it_over_closer_meanings():
    candidates = [("proto", 0.44, "Trust X-Forwarded-Proto behind the proxy"),
                  ("host", 0.39, "validate_csrf_token ignores X-Forwarded-Host")]
    fused = identifier_fusion(candidates, query_terms("X-Forwarded-Host"), 2)
    assert [key for key, _ in fused] == ["host", "proto"]
    assert fused[0][1] == pytest.approx(0.39 + IDENTIFIER_WEIGHT) and fused[1][1] == pytest.approx(0.44)


def test_a_prose_query_keeps_the_cosine_order_whatever_words_rows_share():
    candidates = [("meaning", 0.47, "compute_ratio raises ZeroDivisionError for campaigns"),
                  ("words", 0.45, "page views counter loses increments because of a race")]
    fused = identifier_fusion(candidates, query_terms("the analytics page shows no views because it divides"), 2)
    assert [key for key, _ in fused] == ["meaning", "words"]


def test_union_counts_a_row_once_keeps_first_seen_order_on_ties_and_cuts_at_k():
    candidates = [("a", 0.5, "x"), ("b", 0.5, "x"), ("a", 0.5, "x"), ("c", 0.1, "x")]
    assert identifier_fusion(candidates, query_terms("prose only"), 2) == [("a", 0.5), ("b", 0.5)]
    assert identifier_fusion(candidates, query_terms("prose only"), 10, identifier_weight=0.0)[-1] == ("c", 0.1)
    with pytest.raises(ValueError, match="identifier_weight"):
        identifier_fusion(candidates, {}, 1, identifier_weight=-1.0)


def test_rank_fusion_still_fuses_ranks_for_callers_without_scores():
    assert [key for key, _ in reciprocal_rank_fusion([["a", "b"], ["b", "c"]], (0.5, 0.5))] == ["b", "a", "c"]
