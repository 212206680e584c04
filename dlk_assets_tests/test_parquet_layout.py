"""Shards read from their own parquet row groups: same positions as streaming, no re-reading."""

import json

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.defs.swe_traces.sensors import swe_shard_sensor
from dlk_assets.resources import SweTraceSourceResource
from dlk_assets.sources.hub_layout import write_hub_layout
from dlk_assets.sources.parquet_layout import (
    FooterCache,
    SourceLayoutError,
    build_layout,
    resolve_data_files,
)
from dlk_assets.sources.swe_sample import bundled_sample_path
from dlk_assets.sources.swe_traces import SweTraceStream

FILE_ROWS = (40, 5, 57, 30, 70)  # uneven files; shards of 25 cross file boundaries


@pytest.fixture
def traces():
    return pq.read_table(bundled_sample_path())


@pytest.fixture
def hub_folder(tmp_path, traces):
    write_hub_layout(traces, tmp_path / "repo", FILE_ROWS, row_group_size=16)
    return tmp_path / "repo"


def test_positions_are_the_streaming_positions_across_files_and_row_groups(hub_folder):
    source = SweTraceStream(str(hub_folder))
    streamed = list(load_dataset(str(hub_folder), split="train", streaming=True))
    assert source.layout.total_rows == len(streamed) == sum(FILE_ROWS)
    assert [row for _, row in source.iter_raw(0, 10_000)] == streamed
    for index in range(9):  # every shard of 25, the last one partial
        shard = list(source.iter_raw(index * 25, 25))
        assert [position for position, _ in shard] == list(range(index * 25, min((index + 1) * 25, len(streamed))))
        assert [row for _, row in shard] == streamed[index * 25:(index + 1) * 25]
    records = source.read_shard(1, 25).records
    assert [r.position for r in records] == list(range(25, 50)) and records[0].run_id == streamed[25]["run_id"]


def test_a_shard_reads_only_the_files_and_row_groups_that_hold_it(hub_folder):
    layout = SweTraceStream(str(hub_folder)).layout
    assert [part.row_group_rows for part in layout.parts] == [(16, 16, 8), (5,), (16, 16, 16, 9), (16, 14), (16, 16, 16, 16, 6)]
    # Positions 35..59: the last 5 rows of file 0, all of file 1, the first 15 of file 2.
    assert [(part.url.rsplit("/", 1)[1], first, stop) for part, first, stop in layout.segments(35, 25)] == [
        ("train-00000-of-00005.parquet", 35, 40), ("train-00001-of-00005.parquet", 0, 5),
        ("train-00002-of-00005.parquet", 0, 15)]
    last_file = layout.parts[4]
    assert last_file.row_groups_for(20, 45) == ([1, 2], 4)  # rows 20..44 sit in groups 1-2, from row 4 of group 1
    assert layout.segments(202, 25) == [] and list(layout.iter_rows(10_000, 5)) == []


def test_footers_are_read_once_and_again_only_when_a_file_changes(tmp_path, hub_folder, traces):
    cache_path = tmp_path / "footers.json"
    files = resolve_data_files(str(hub_folder), "train")
    build_layout(files, FooterCache(cache_path))
    cached = json.loads(cache_path.read_text())
    assert sorted(map(tuple, cached.values())) == sorted(p for p in [(16, 16, 8), (5,), (16, 16, 16, 9), (16, 14), (16, 16, 16, 16, 6)])
    # The cache is what a later process trusts: it does not open the footers again.
    cache_path.write_text(json.dumps({version: [1] for version in cached}))
    assert build_layout(files, FooterCache(cache_path)).total_rows == 5
    # A rewritten file is a new version: its footer is read again, the others still come from the cache.
    pq.write_table(traces.slice(0, 3), files[0])
    layout = build_layout(files, FooterCache(cache_path))
    assert [part.rows for part in layout.parts] == [3, 1, 1, 1, 1]


def test_an_empty_file_holds_no_positions(tmp_path, traces):
    write_hub_layout(traces, tmp_path / "repo", (10, 0, 10))
    source = SweTraceStream(str(tmp_path / "repo"))
    assert source.layout.total_rows == 20 and [p for p, _ in source.iter_raw(5, 10)] == list(range(5, 15))
    assert source.has_shard(1, 10) and not source.has_shard(2, 10)


def test_sources_that_cannot_be_read_by_row_groups_are_refused_by_name(tmp_path, hub_folder):
    (tmp_path / "json" / "data").mkdir(parents=True)
    (tmp_path / "json" / "data" / "train-00000-of-00001.jsonl").write_text('{"run_id": "a"}\n')
    with pytest.raises(SourceLayoutError, match=r"not parquet \(e\.g\. .*train-00000-of-00001\.jsonl\).*refs/convert/parquet"):
        SweTraceStream(str(tmp_path / "json")).has_shard(0, 1)
    with pytest.raises(SourceLayoutError, match=r"has no split 'validation' \(splits: train\)"):
        SweTraceStream(str(hub_folder), split="validation").has_shard(0, 1)


def tick(instance, cursor, folder):
    source = SweTraceSourceResource(dataset=str(folder), shard_size=25, max_new_shards_per_tick=100)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"swe_source": source})
    result = swe_shard_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(swe_shards.name, list(request.partition_keys))
    return result


def test_the_sensor_finds_new_files_and_reads_only_their_footers(dagster_home, hub_folder, traces):
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, None, hub_folder)
    assert [r.partition_key for r in first.run_requests] == [f"shard-{i:05d}" for i in range(9)]
    footers = dagster_home / "sources" / "parquet-footers.json"
    assert len(json.loads(footers.read_text())) == len(FILE_ROWS)
    idle = tick(instance, first.cursor, hub_folder)
    assert not idle.run_requests and "202 rows in 5 parquet file(s); 9 shard(s) of 25 registered" in idle.skip_reason.skip_message
    # The dataset grows by a file (a new upload at the end of the split): its shards are new, and the
    # shard registered partial (positions 200..201 of 200..224) runs again to take its new rows.
    extra = pa.concat_tables([traces, traces]).slice(202, 60)
    pq.write_table(extra, hub_folder / "data" / "train-00005-of-00005.parquet")
    grown = tick(instance, idle.cursor, hub_folder)
    assert [(r.partition_key, r.run_key) for r in grown.run_requests] == [
        ("shard-00008", "shard-00008@262"), ("shard-00009", "shard-00009"), ("shard-00010", "shard-00010")]
    assert list(grown.dynamic_partitions_requests[0].partition_keys) == ["shard-00009", "shard-00010"]
    assert len(json.loads(footers.read_text())) == len(FILE_ROWS) + 1
    assert not tick(instance, grown.cursor, hub_folder).run_requests


def test_a_hub_file_pinned_to_a_commit_costs_no_request_once_its_footer_is_cached():
    # This machine cannot reach the hub: building the layout works only because nothing is fetched.
    pinned = "hf://datasets/detection-datasets/coco@" + "a" * 40 + "/data/train-00000-of-00040.parquet"
    cache = FooterCache()
    cache.put(pinned, [100, 50])
    layout = build_layout([pinned], cache)
    assert layout.total_rows == 150 and layout.parts[0].row_groups_for(90, 120) == ([0, 1], 90)


def test_a_damaged_footer_cache_is_a_cold_cache(tmp_path, hub_folder):
    cache_path = tmp_path / "footers.json"
    for damage in ("{not json", '["a list"]', '{"v": [-1]}', '{"v": "12"}'):
        cache_path.write_text(damage)
        assert build_layout(resolve_data_files(str(hub_folder), "train"), FooterCache(cache_path)).total_rows == 202
        assert len(json.loads(cache_path.read_text())) == len(FILE_ROWS)
