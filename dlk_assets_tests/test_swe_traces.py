"""SWE traces on real Deep Lake tables: resumable ingestion under injected write failures, memory
search in three modes (with hostile queries, a recall@5 evaluation and hybrid against each leg on
held-out probes), replay and agent tools."""

import json
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pytest

from dlk_assets.agents.memory_tools import MemoryRecord, MemoryTools, Trace
from dlk_assets.cli import main as dlk
from dlk_assets.defs.pipeline.serving import embeddings_table
from dlk_assets.defs.swe_traces.assets import swe_traces
from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.defs.swe_traces.replay import recent_runs, traces_for_run
from dlk_assets.defs.swe_traces.search import MODES, search_memory
from dlk_assets.defs.swe_traces.sensors import swe_shard_sensor
from dlk_assets.defs.swe_traces.spec import MEMORY
from dlk_assets.defs.swe_traces.tables import SWE_TRACES
from dlk_assets.encoders.base import QueryCache
from dlk_assets.lake.batching import BatchPolicy, TransientWriteError, append_missing
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.tables import Table
from dlk_assets.models.probes import load_probes, matches, probes_path
from dlk_assets.operations import Operator
from dlk_assets.resources import LocalLakeResource, SweTraceSourceResource
from dlk_assets.sources.swe_sample import sample_rows

from .conftest import definitions, sample_resources

# The memory probe set doubles as the evaluation set: each query with the bug family it must find.
EVAL = [{"query": p.query, "family": p.expect["trial_name"]["prefix"].removesuffix("__"), "kind": p.kind}
        for p in load_probes(probes_path("memory")).probes]
SCHEMA = TableSchema("events", (Column("text", Kind.TEXT), Column("n", Kind.INT)))


class FlakyTable(Table):
    """A real table whose appends fail on chosen calls: before writing, or after (the ack is lost)."""

    def __init__(self, table: Table, fail_before: set[int], fail_after: set[int], error=TransientWriteError):
        super().__init__(table.schema)
        self.table, self.fail_before, self.fail_after, self.error, self.calls = table, fail_before, fail_after, error, 0

    def append(self, partition, rows, message, skip_existing=False):
        self.calls += 1
        if self.calls in self.fail_before:
            raise self.error(f"injected failure before write on call {self.calls}")
        write = self.table.append(partition, rows, message, skip_existing)
        if self.calls in self.fail_after:
            raise self.error(f"injected failure after write on call {self.calls}")
        return write

    def __getattribute__(self, name):
        # Everything but append goes straight to the real table.
        if name in ("append", "table", "fail_before", "fail_after", "error", "calls", "schema", "__class__", "__dict__"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "table"), name)

    replace_partition = read_partition = partition_counts = read_rows = read_where = row_keys = search = None
    keyword_search = create_index = indexes = explain = tag_version = open_tag = version = uri = __len__ = partitions_of = None
    upsert = delete_rows = None


def event_rows(count):
    return [{"row_key": f"e:{i:04d}", "text": f"event {i}", "n": i} for i in range(count)]


def stored(table):
    rows = table.read_partition("p")
    return [r["row_key"] for r in rows], len(table)


def test_batches_shrink_on_transient_failures_grow_back_and_lose_nothing(tmp_path):
    real = LocalDeepLake(tmp_path).table(SCHEMA)
    flaky = FlakyTable(real, fail_before={2, 3}, fail_after={6})
    waits = []
    report = append_missing(flaky, "p", event_rows(100), "ingest", BatchPolicy(batch_size=16, max_batch_size=64), sleep=waits.append)
    keys, total = stored(real)
    assert keys == [f"e:{i:04d}" for i in range(100)] and total == 100  # nothing lost, nothing twice
    assert report.written == 100 and report.retries == 3 and report.already_present == 0
    assert waits == [0.5, 1.0, 0.5]  # exponential backoff, reset after a clean batch
    assert report.batch_sizes[0] == 16 and report.batch_sizes[1] == 4  # halved twice after two failures
    assert max(report.batch_sizes[2:]) > 4  # and grown back after clean batches
    landed = [int(e.split("; ")[1].split(" row(s)")[0]) for e in report.events]
    assert landed[:2] == [0, 0] and landed[2] > 0  # the third failure came after its rows were committed


def test_a_lost_acknowledgement_is_not_written_twice(tmp_path):
    real = LocalDeepLake(tmp_path).table(SCHEMA)
    report = append_missing(FlakyTable(real, set(), fail_after={1}), "p", event_rows(10), "ingest",
                            BatchPolicy(batch_size=10), sleep=lambda _: None)
    assert stored(real) == ([f"e:{i:04d}" for i in range(10)], 10)
    assert report.written == 10 and report.retries == 1 and "10 row(s) had landed" in report.events[0]


def test_other_errors_stop_the_run_and_a_rerun_resumes(tmp_path):
    real = LocalDeepLake(tmp_path).table(SCHEMA)
    with pytest.raises(OSError, match="disk full"):
        append_missing(FlakyTable(real, {3}, set(), error=lambda m: OSError("disk full")), "p", event_rows(40), "ingest",
                       BatchPolicy(batch_size=8, grow_after_successes=100), sleep=lambda _: None)
    assert len(real) == 16  # two clean batches committed, the failed one rolled back
    report = append_missing(real, "p", event_rows(40), "ingest", BatchPolicy(batch_size=8))
    assert (report.already_present, report.written) == (16, 24) and stored(real) == ([f"e:{i:04d}" for i in range(40)], 40)


def test_too_many_failures_in_a_row_give_up_with_the_error(tmp_path):
    real = LocalDeepLake(tmp_path).table(SCHEMA)
    flaky = FlakyTable(real, set(range(1, 100)), set())
    with pytest.raises(TransientWriteError):
        append_missing(flaky, "p", event_rows(5), "ingest", BatchPolicy(batch_size=4, max_consecutive_failures=3), sleep=lambda _: None)
    assert flaky.calls == 4 and len(real) == 0


def test_append_refuses_keys_that_are_already_stored(tmp_path):
    table = LocalDeepLake(tmp_path).table(SCHEMA)
    table.append("p", event_rows(3), "first")
    with pytest.raises(ValueError, match="'e:0001' already belongs to this partition"):
        table.append("p", event_rows(3)[1:], "again")
    assert len(table) == 3


def test_swe_traces_rerun_and_resume_write_only_what_is_missing(dagster_home):
    lake, source = LocalLakeResource(), SweTraceSourceResource(insert_batch_size=8)
    context = dg.build_asset_context(partition_key="shard-00001")
    # A killed run: only the first 30 traces of the shard made it in.
    first = swe_traces(context, swe_source=source, lake=lake)
    table = lake.lake().table(SWE_TRACES)
    keep = sorted(table.row_keys("shard-00001"))[:30]
    table.replace_partition("shard-00001", [r for r in table.read_partition("shard-00001") if r["row_key"] in keep], "simulate a killed run")
    resumed = swe_traces(context, swe_source=source, lake=lake)
    again = swe_traces(context, swe_source=source, lake=lake)
    assert first.metadata["written"] == 100 and (resumed.metadata["already_present"], resumed.metadata["written"]) == (30, 70)
    assert (again.metadata["already_present"], again.metadata["written"]) == (100, 0)
    assert table.partition_counts() == {"shard-00001": 100}


def test_sensor_registers_trace_shards_with_a_cursor():
    instance = dg.DagsterInstance.ephemeral()
    resources = {"swe_source": SweTraceSourceResource(max_new_shards_per_tick=2)}
    first = swe_shard_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert [r.partition_key for r in first.run_requests] == ["shard-00000", "shard-00001"]
    assert json.loads(first.cursor) == {"next_shard": 2, "positions_seen": 288}
    instance.add_dynamic_partitions(swe_shards.name, ["shard-00000", "shard-00001"])
    second = swe_shard_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources))
    assert [r.partition_key for r in second.run_requests] == ["shard-00002"]
    assert json.loads(second.cursor) == {"next_shard": 3, "positions_seen": 288}


@pytest.fixture(scope="module")
def memory(tmp_path_factory):
    home = tmp_path_factory.mktemp("swe") / "dagster_home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        # materialize() checks every asset's resources, so the other sources' are configured too (never used).
        patch.delenv("DLK_MODELS_FILE", raising=False)
        patch.delenv("DLK_TEXT_ENCODER", raising=False)
        resources = sample_resources()
        with dg.DagsterInstance.ephemeral() as instance:
            operator = Operator(instance, definitions(resources), resources, log=lambda _: None)
            operator.ingest(MEMORY)
            operator.build_index(MEMORY)
            operator.cutover(MEMORY)
        lake = resources["lake"].lake()
        encoder = resources["models"].registry().active(MEMORY, lake)
        yield SimpleNamespace(lake=lake, encoder=encoder, table=embeddings_table(MEMORY, lake, encoder), home=home)


def family(hit):
    return hit.values["trial_name"].split("__")[0]


def recall_at_5(memory, query, wanted, mode):
    hits = search_memory(memory.table, memory.encoder, query, mode, 5)
    return sum(family(h) == wanted for h in hits) / 5


def test_each_mode_wins_where_it_should_and_hybrid_wins_overall(memory, capsys):
    recall = {mode: [recall_at_5(memory, q["query"], q["family"], mode) for q in EVAL] for mode in MODES}
    with capsys.disabled():
        print("\nrecall@5 on the memory evaluation set (" + str(len(EVAL)) + " queries): "
              + ", ".join(f"{mode} {np.mean(values):.3f}" for mode, values in recall.items()))
    by_query = {q["query"]: {mode: recall[mode][i] for mode in MODES} for i, q in enumerate(EVAL)}
    assert by_query["X-Forwarded-Host"]["bm25"] > by_query["X-Forwarded-Host"]["vector"]  # an identifier: BM25 wins
    assert by_query["RFC 6531"]["bm25"] > by_query["RFC 6531"]["vector"]
    paraphrase = "too many database round trips when listing purchases"
    assert by_query[paraphrase]["vector"] > by_query[paraphrase]["bm25"]  # a paraphrase: vector wins
    assert np.mean(recall["hybrid"]) >= max(np.mean(recall["bm25"]), np.mean(recall["vector"]))


HELD_OUT = Path(__file__).parent / "data" / "memory_probes_heldout.yaml"


def precision_and_hit(memory, encoder, probes, mode):
    """Mean precision@5 and hit@1 of `mode` over the probes (a hit is relevant when it is in the probe's family)."""
    precision, hit = [], []
    for probe in probes:
        relevant = [matches(h.values, probe.expect) for h in search_memory(memory.table, encoder, probe.query, mode, 5)]
        precision.append(sum(relevant) / 5)
        hit.append(bool(relevant) and relevant[0])
    return float(np.mean(precision)), float(np.mean(hit))


@pytest.mark.parametrize("split", ["held-out", "memory.yaml"])
def test_hybrid_never_loses_to_its_better_leg_on_precision_and_first_hit(memory, split, capsys):
    # The held-out probes were written apart from the sample and never used to choose the fusion
    # (benchmarks/eval_hybrid.py prints every split); memory.yaml was written with the sample.
    probes = load_probes(HELD_OUT if split == "held-out" else probes_path("memory")).probes
    encoder = QueryCache(memory.encoder)
    scores = {mode: precision_and_hit(memory, encoder, probes, mode) for mode in MODES}
    with capsys.disabled():
        print(f"\nprecision@5 / hit@1 on {split} ({len(probes)} probes): "
              + ", ".join(f"{mode} {p:.3f} / {h:.3f}" for mode, (p, h) in scores.items()))
    for leg in ("bm25", "vector"):
        assert scores["hybrid"][0] >= scores[leg][0], (leg, scores)
        assert scores["hybrid"][1] >= scores[leg][1], (leg, scores)


HOSTILE = ["it's a 'quoted' task", "semicolon; DROP TABLE swe_traces; --", "back\\slash \\' escape", "naïve café 数据 ✓",
           "\"double\" quotes", "' OR 1=1 --", "%_ LIKE wildcards", "\\x00 and \x07 bell"]


def test_hostile_query_text_is_searched_for_never_executed(memory):
    rows_before, version = len(memory.table), memory.table.version
    for query in HOSTILE:
        for mode in MODES:
            hits = search_memory(memory.table, memory.encoder, query, mode, 3)
            assert len(hits) <= 3
    assert (len(memory.table), memory.table.version) == (rows_before, version)
    assert memory.lake.table(SWE_TRACES).partition_counts() == {"shard-00000": 100, "shard-00001": 100, "shard-00002": 88}


def test_hostile_text_in_the_data_is_found_by_its_own_words(tmp_path):
    from dlk_assets.retrieval.requests import KeywordSearch

    table = LocalDeepLake(tmp_path).table(SCHEMA)
    table.append("p", [{"row_key": f"h:{i}", "text": text, "n": i} for i, text in enumerate(HOSTILE)], "hostile")
    table.create_index("text", "bm25")
    for i, text in enumerate(HOSTILE[:5]):
        hits = table.keyword_search(KeywordSearch("text", text, 1, ("text",)))
        assert hits and hits[0].values["text"] == text, text
    assert len(table) == len(HOSTILE)


def test_empty_query_and_unknown_mode_are_clear_errors(memory):
    with pytest.raises(ValueError, match="empty"):
        search_memory(memory.table, memory.encoder, "   ", "hybrid", 5)
    with pytest.raises(ValueError, match="unknown memory search mode 'fuzzy'"):
        search_memory(memory.table, memory.encoder, "x", "fuzzy", 5)


def test_replay_gives_back_every_trace_exactly_as_ingested(memory):
    table = memory.lake.table(SWE_TRACES)
    for row in sample_rows():
        (trace,) = traces_for_run(table, row["run_id"])
        assert trace["conversations"]["messages"] == row["conversations"], row["run_id"]
        assert {k: trace[k] for k in row if k != "conversations"} == {k: v for k, v in row.items() if k != "conversations"}
    assert traces_for_run(table, "no-such-run") == []
    recent = recent_runs(table, 5)
    assert len(recent) == 5 and [r["date"] for r in recent] == sorted((r["date"] for r in recent), reverse=True)


def test_agent_tools_are_typed_and_answer_from_memory(memory):
    tools = MemoryTools(memory.lake, memory.encoder)
    found = tools.search_memory("refresh_session_token", "bm25", 3)
    assert all(isinstance(r, MemoryRecord) for r in found) and "refresh_session_token" in found[0].task
    failures = tools.similar_failures("TokenExpiredError: access token expired", k=3)
    assert failures and all("TokenExpiredError" in r.errors for r in failures)
    unresolved = tools.similar_failures("TokenExpiredError", k=3, only_unresolved=True)
    assert unresolved and {r.outcome for r in unresolved} <= {"failed", "unknown"} and [r.rank for r in unresolved] == list(range(1, len(unresolved) + 1))
    run_id = sample_rows()[5]["run_id"]
    (trace,) = tools.trace_by_run_id(run_id)
    assert isinstance(trace, Trace) and [m.content for m in trace.messages] == [m["content"] for m in sample_rows()[5]["conversations"]]
    assert tools.trace_by_run_id("unknown") == [] and len(tools.as_tools()) == 3


def test_cli_replay_and_memory_search(memory, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(memory.home))
    run_id = sample_rows()[1]["run_id"]
    assert dlk(["replay", run_id]) == 0
    out = capsys.readouterr().out
    assert f"run_id:         {run_id}" in out and out.count("--- [") == len(sample_rows()[1]["conversations"])
    assert dlk(["replay", "--list", "--limit", "3"]) == 0 and len(capsys.readouterr().out.strip().splitlines()) == 4
    assert dlk(["replay", "not-a-run"]) == 1 and "no trace with run_id 'not-a-run'" in capsys.readouterr().err
    assert dlk(["search", "memory", "fix authentication bug", "--mode", "hybrid", "--k", "10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["rank", "score", "outcome", "run_id"] and len(lines) == 11
    assert dlk(["search", "coco", "a cat", "--mode", "bm25"]) == 2
