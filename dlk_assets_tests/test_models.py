"""Pure units of the model registry: the registry file, the catalog, probes, the gate, coverage and cost,
data versions and progress lines."""

import pytest

from dlk_assets.defs.pipeline.hits import (
    RANK,
    SCORE,
    format_hits,
    hits_markdown,
    value_column,
)
from dlk_assets.defs.pipeline.progress import Progress
from dlk_assets.defs.pipeline.versions import combined_version, rows_version
from dlk_assets.models.catalog import CATALOG, canonical_name, names_for
from dlk_assets.models.coverage import Coverage, estimate_backfill, format_duration
from dlk_assets.models.gate import decide
from dlk_assets.models.probes import (
    ProbeScore,
    load_probes,
    matches,
    probes_path,
    score_probes,
)
from dlk_assets.models.settings import load_settings, source_entry, write_source_entry
from dlk_assets.retrieval.requests import Hit


def test_target_comes_from_the_file_then_the_environment_then_the_default(tmp_path, monkeypatch):
    path = tmp_path / "models.yaml"
    monkeypatch.delenv("DLK_IMAGE_ENCODER", raising=False)
    assert load_settings(path).target("coco", "image") == "efficientnet-lite0"  # no file: the catalog default
    monkeypatch.setenv("DLK_IMAGE_ENCODER", "efficientnet-minilm")  # the name earlier releases used
    assert load_settings(path).target("coco", "image") == "efficientnet-lite0"
    monkeypatch.setenv("DLK_IMAGE_ENCODER", "efficientnet-lite2")
    assert load_settings(path).target("videos", "image") == "efficientnet-lite2"
    assert load_settings(path).target("memory", "text") == "minilm"  # the image setting leaves text sources alone
    write_source_entry("coco", path, target="efficientnet-lite0", min_recall_delta=-0.1)
    write_source_entry("videos", path, min_recall_delta=0.0)
    settings = load_settings(path)
    assert settings.target("coco", "image") == "efficientnet-lite0"  # the file's entry wins for its source
    assert settings.target("videos", "image") == "efficientnet-lite2"
    assert (settings.min_recall_delta("coco"), settings.min_recall_delta("videos"), settings.min_recall_delta("memory")) == (-0.1, 0.0, -0.05)
    write_source_entry("coco", path, target="efficientnet-lite2")
    assert load_settings(path).sources["coco"].min_recall_delta == -0.1  # other fields of the entry are kept


@pytest.mark.parametrize("text,message", [
    ("sources: {coco: {target: resnet}}", "sources.coco.target: unknown encoder 'resnet'"),
    ("sources: {coco: {min_recall_delta: 3}}", "sources.coco.min_recall_delta: expected a number from -1 to 1"),
    ("sources: {coco: {targt: minilm}}", r"sources.coco: unknown field\(s\) \['targt'\]"),
    ("sources: [1, 2]", "sources: expected a mapping of source name"),
    ("other: 1", "one key, 'sources'"),
])
def test_a_bad_registry_file_is_refused_naming_the_field(tmp_path, text, message):
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def test_a_write_that_would_not_validate_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "models.yaml"
    write_source_entry("coco", path, target="efficientnet-lite2")
    before = path.read_text()
    with pytest.raises(ValueError, match="min_recall_delta"):
        write_source_entry("coco", path, min_recall_delta="lots")
    assert path.read_text() == before and not list(tmp_path.glob(".models-*"))


def test_the_catalog_checks_names_and_modalities():
    assert set(names_for("image")) == {"efficientnet-lite0", "efficientnet-lite2", "colqwen3"} and names_for("text") == ["minilm", "minilm-bf16"]
    assert canonical_name("efficientnet-minilm") == "efficientnet-lite0" and all(CATALOG[n].summary for n in CATALOG)
    with pytest.raises(ValueError, match="this source needs a text encoder: minilm, minilm-bf16"):
        canonical_name("efficientnet-lite2", "text")
    with pytest.raises(ValueError, match="unknown encoder 'clip'"):
        canonical_name("clip")


def hit(rank, key, **values):
    return Hit(rank, key, 1.0 / rank, values)


def test_probe_expectations_match_fields_by_value_or_by_tests():
    assert matches({"image_id": 7, "x": 1}, {"image_id": 7}) and not matches({"image_id": 8}, {"image_id": 7})
    assert matches({"trial_name": "auth_refresh__3"}, {"trial_name": {"prefix": "auth_refresh__"}})
    chunk = {"video_id": "v", "start_s": 4.0, "end_s": 8.0}
    assert matches(chunk, {"video_id": "v", "start_s": {"le": 6.0}, "end_s": {"gt": 6.0}})
    assert not matches(chunk, {"video_id": "v", "start_s": {"le": 2.0}, "end_s": {"gt": 2.0}})
    assert not matches({"video_id": "v"}, {"start_s": {"le": 1}})  # a missing field never matches


def test_probe_recall_counts_matching_hits_against_what_can_be_found(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("k: 2\nqueries:\n  - {query: cats, expect: {kind: cat}, relevant: 3}\n  - {query: one, expect: {id: 1}}\n")
    probes = load_probes(path)
    answers = {"cats": [hit(1, "a", kind="cat"), hit(2, "b", kind="dog")], "one": [hit(1, "x", id=2), hit(2, "y", id=1)]}
    score = score_probes(probes, lambda query, k: answers[query][:k])
    assert [r.recall for r in score.results] == [0.5, 1.0] and score.recall == 0.75 and score.results[1].found == ["y"]
    for name in ("coco", "videos", "memory"):  # the shipped probe sets load
        assert load_probes(probes_path(name)).probes
    path.write_text("k: 2\nqueries:\n  - {query: x, expect: {a: {near: 1}}}\n")
    with pytest.raises(ValueError, match=r"queries\[0\].expect.a: tests must be among"):
        load_probes(path)


def score(recall):
    return ProbeScore(3, recall, ())


def test_the_gate_refuses_an_incomplete_or_worse_target_and_passes_otherwise():
    assert not decide("lite2", "lite0", 5, score(1.0), score(0.5), -0.05).passed  # rows still to embed
    worse = decide("lite2", "lite0", 0, score(0.6), score(0.8), -0.05)
    assert not worse.passed and "is -0.200 against lite0" in worse.reason
    assert decide("lite2", "lite0", 0, score(0.76), score(0.8), -0.05).passed  # within the margin
    assert not decide("lite2", "lite0", 0, score(0.8), score(0.8), 0.5).passed  # a margin that asks for a gain
    first = decide("lite0", None, 0, score(0.4), None, -0.05)
    assert first.passed and "no other model" in first.reason


def test_coverage_lists_partitions_behind_the_target_and_what_embedding_them_costs():
    covered = Coverage("t_new", {"p0": 3, "p1": 3, "p2": 2}, {"t_old": {"p0": 3, "p1": 3, "p2": 2}, "t_new": {"p0": 3, "p1": 1}})
    assert covered.current == ["p0"] and covered.behind == {"p1": ["t_old"], "p2": ["t_old"]}
    assert covered.items_to_embed == 5 and not covered.complete
    assert Coverage("t", {"p0": 1}, {}).behind == {"p0": []}  # embedded by nothing yet
    estimate = estimate_backfill(covered, 8, (2.0, 4.0), "measured")
    assert (estimate.items, estimate.partitions, estimate.runs, estimate.seconds) == (5, 2, 1, 6.5)
    assert estimate.metadata()["expected_duration"] == "6.5 s" and estimate.metadata()["target_items_per_second"] == 2.0
    unknown = estimate_backfill(covered, 1, None, "never ran")
    assert unknown.seconds is None and unknown.runs == 2 and unknown.metadata()["throughput_source"] == "not measured"
    assert estimate_backfill(Coverage("t", {"p0": 1}, {"t": {"p0": 1}}), 8, None, "-").seconds == 0.0
    assert [format_duration(s) for s in (None, 0.4, 45, 720, 12600)] == ["unknown", "0.4 s", "45 s", "12 min", "3.5 h"]


def test_data_versions_follow_content_not_the_run_that_wrote_it():
    rows = [{"row_key": "b", "sha256": "2", "dagster_run_id": "run-1"}, {"row_key": "a", "sha256": "1", "dagster_run_id": "run-1"}]
    again = [{**row, "dagster_run_id": "run-2"} for row in reversed(rows)]
    changed = [{**rows[0], "sha256": "3"}, rows[1]]
    assert rows_version(rows) == rows_version(again) != rows_version(changed)
    assert rows_version(rows, ["sha256"]) == rows_version(again, ["sha256"])
    assert combined_version(["a@1", "b@2"]) == combined_version(["a@1", "b@2"]) != combined_version(["a@1", "b@3"])


def test_progress_lines_say_done_of_total_rate_and_time_left():
    now = [0.0]
    lines = []
    progress = Progress(10, "images", lines.append, every_s=5, clock=lambda: now[0])
    now[0] = 2.0
    progress.advance(4, "shard-00001 [lite2]")  # 2 s after the start: too soon to log
    now[0] = 6.0
    progress.advance(2, "shard-00001 [lite2]")
    now[0] = 8.0
    progress.advance(4, "shard-00002 [lite2]")  # the end is always logged
    assert lines == ["shard-00001 [lite2]: 6/10 images, 1.00 images/s, 4.0 s left", "shard-00002 [lite2]: 10/10 images, 1.25 images/s, done"]


def test_hit_tables_print_for_terminals_and_markdown():
    hits = [Hit(1, "k1", 0.5, {"name": "a|b", "n": 3}), Hit(2, "k2", None, {"name": "c", "n": 12})]
    columns = (RANK, SCORE, value_column("n", width=3, numeric=True), value_column("name"))
    assert format_hits(hits, columns).splitlines() == [
        "rank    score    n  name", "   1   0.5000    3  a|b", "   2        -   12  c"]
    assert format_hits([], columns).endswith("(no matches)")
    assert "| 1 | 0.5000 | 3 | a/b |" in hits_markdown(hits, columns)


def test_a_field_set_to_none_leaves_the_entry(tmp_path):
    path = tmp_path / "models.yaml"
    write_source_entry("coco", path, target="efficientnet-lite2", min_recall_delta=-0.1)
    write_source_entry("coco", path, target=None)  # what a refused `dlk migrate` does when none was written
    assert source_entry("coco", path) == {"min_recall_delta": -0.1} and source_entry("videos", path) == {}
