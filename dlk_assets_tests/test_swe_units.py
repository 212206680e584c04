"""Pure pieces of the SWE-trace pipeline: trace parsing, summaries, keyword text, rank fusion, batching."""

import pytest

from dlk_assets.defs.swe_traces.summary import summarize
from dlk_assets.lake.batching import BatchPolicy
from dlk_assets.retrieval.fusion import RRF_K, reciprocal_rank_fusion
from dlk_assets.retrieval.keywords import keyword_text
from dlk_assets.sources.shards import BadRecordError
from dlk_assets.sources.swe_sample import sample_rows
from dlk_assets.sources.swe_traces import SweTraceStream, parse_trace


def test_rrf_sums_weighted_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]], [0.5, 0.5]))
    assert fused["a"] == pytest.approx(0.5 / (RRF_K + 1))
    assert fused["c"] == pytest.approx(0.5 / (RRF_K + 3) + 0.5 / (RRF_K + 1))
    assert [key for key, _ in reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]], [0.5, 0.5])] == ["c", "a", "b", "d"]


def test_rrf_weights_decide_between_the_lists_and_ties_keep_first_seen_order():
    assert reciprocal_rank_fusion([["bm"], ["vec"]], [0.8, 0.2])[0][0] == "bm"
    assert reciprocal_rank_fusion([["bm"], ["vec"]], [0.2, 0.8])[0][0] == "vec"
    assert [k for k, _ in reciprocal_rank_fusion([["x"], ["y"]], [1, 1])] == ["x", "y"]
    with pytest.raises(ValueError, match="2 rankings but 1 weights"):
        reciprocal_rank_fusion([["a"], ["b"]], [1.0])
    with pytest.raises(ValueError, match="not all zero"):
        reciprocal_rank_fusion([["a"]], [0.0])


def test_keyword_text_drops_stop_words_but_keeps_identifiers():
    assert keyword_text("the program freezes when it tries to exit") == "program freezes tries exit"
    assert keyword_text("why does refresh_session_token raise TokenExpiredError") == "refresh_session_token raise TokenExpiredError"
    assert keyword_text("the and of") == "the and of"  # nothing but stop words: search them as typed
    assert keyword_text("x\x00y\x1fz") == "x y z"


def test_summary_reads_outcome_errors_and_commands():
    resolved = summarize([
        {"role": "user", "content": "Task: fix it"},
        {"role": "assistant", "content": "```bash\npytest -x\n```"},
        {"role": "user", "content": "TokenExpiredError: expired\nERR_TOO_MANY_REDIRECTS\nTokenExpiredError again"},
        {"role": "assistant", "content": "All tests pass. The task is complete."},
    ])
    assert (resolved.outcome, resolved.errors, resolved.commands, resolved.message_count) == (
        "resolved", ["TokenExpiredError", "ERR_TOO_MANY_REDIRECTS"], ["pytest -x"], 4)
    failed = summarize([{"role": "assistant", "content": "The tests still fail; stopping here."}])
    unknown = summarize([{"role": "user", "content": "hello"}])
    assert (failed.outcome, unknown.outcome, unknown.errors) == ("failed", "unknown", [])


def test_sample_has_hundreds_of_traces_with_the_real_columns():
    rows = sample_rows()
    assert len(rows) == 288 and len({r["run_id"] for r in rows}) == 288
    assert set(rows[0]) == {"agent", "model", "model_provider", "date", "task", "episode", "run_id", "trial_name", "conversations"}
    assert rows[0]["conversations"][0]["role"] == "system" and rows == sample_rows()


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("task"), "missing field\\(s\\) task"),
    (lambda r: r.update(task="  "), "field 'task' is empty"),
    (lambda r: r.update(model=42), "field 'model' must be text, got int"),
    (lambda r: r.update(conversations=[]), "'conversations' must be a non-empty list"),
    (lambda r: r.update(conversations=[{"role": "user"}]), "conversations\\[0\\] must have text 'role' and 'content'"),
])
def test_bad_traces_are_rejected_naming_the_item_and_field(change, message):
    raw = dict(sample_rows()[0])
    change(raw)
    with pytest.raises(BadRecordError, match=f"stream position 7.*{message}"):
        parse_trace(raw, 7)


def test_row_keys_are_deterministic_and_independent_of_position():
    raw = sample_rows()[3]
    assert parse_trace(raw, 3).row_key == parse_trace(raw, 99).row_key != parse_trace(sample_rows()[4], 4).row_key


def test_bundled_stream_shards_and_reports_its_end():
    stream = SweTraceStream()
    assert [stream.has_shard(i, 100) for i in range(4)] == [True, True, True, False]
    assert len(stream.read_shard(2, 100).records) == 88
    with pytest.raises(BadRecordError, match="shard-00003 is empty"):
        stream.read_shard(3, 100)


def test_batch_policy_rejects_impossible_sizes():
    with pytest.raises(ValueError):
        BatchPolicy(batch_size=8, min_batch_size=16)
