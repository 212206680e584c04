"""The shard sensor on an ephemeral instance, and the definitions as Dagster loads them."""

import json

import dagster as dg
import yaml

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.sensors import coco_shard_sensor
from dlk_assets.defs.gpu import GPU_POOL
from dlk_assets.models.catalog import build_encoder
from dlk_assets.resources import CocoSourceResource

from .conftest import REPO

SLICES = {"coco_slices": "coco_active_model", "video_slices": "video_active_model"}
PREFIXES = ("coco", "video", "memory", "documents")  # every source's asset prefix


def tick(instance, cursor=None, **settings):
    source = CocoSourceResource(shard_size=3, **settings)
    return coco_shard_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"coco_source": source}))


def test_sensor_registers_shards_incrementally_with_a_cursor():
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, max_new_shards_per_tick=2)
    assert [r.partition_key for r in first.run_requests] == ["shard-00000", "shard-00001"]
    assert [r.run_key for r in first.run_requests] == ["shard-00000", "shard-00001"]
    assert json.loads(first.cursor) == {"next_shard": 2, "positions_seen": 8}
    instance.add_dynamic_partitions(coco_shards.name, list(first.dynamic_partitions_requests[0].partition_keys))
    second = tick(instance, first.cursor, max_new_shards_per_tick=2)
    assert [r.partition_key for r in second.run_requests] == ["shard-00002"]
    assert json.loads(second.cursor) == {"next_shard": 3, "positions_seen": 8}
    instance.add_dynamic_partitions(coco_shards.name, ["shard-00002"])
    third = tick(instance, second.cursor, max_new_shards_per_tick=2)
    assert not third.run_requests and third.skip_reason.skip_message == \
        "no shard at index 3 yet: the source has nothing at stream position 9 (8 rows in 1 parquet file(s); " \
        "3 shard(s) of 3 registered)"
    # A cursor written before positions were remembered (the shard index alone) is still read.
    assert not tick(instance, "3").run_requests


def test_a_tick_evaluated_twice_requests_the_same_runs_under_the_same_keys():
    # A retried tick (a crash before the cursor was saved, two daemons) asks again; Dagster launches a
    # run key once per sensor, so equal keys mean nothing runs twice.
    instance = dg.DagsterInstance.ephemeral()
    first, again = tick(instance, max_new_shards_per_tick=2), tick(instance, max_new_shards_per_tick=2)
    assert [(r.run_key, r.partition_key) for r in first.run_requests] == [(r.run_key, r.partition_key) for r in again.run_requests]
    assert first.cursor == again.cursor
    # Once the first tick's partitions exist, even a stale cursor asks for no old key again.
    instance.add_dynamic_partitions(coco_shards.name, ["shard-00000", "shard-00001"])
    later = tick(instance, None, max_new_shards_per_tick=2)
    assert [r.run_key for r in later.run_requests] == ["shard-00002"]


def test_the_gpu_pool_is_limited_and_only_it():
    config = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    assert "default_limit" not in config.get("concurrency", {}).get("pools", {})  # other pools stay unlimited
    instance = dg.DagsterInstance.ephemeral()
    assert GPU_POOL not in instance.event_log_storage.get_concurrency_keys()
    tick(instance)  # the first tick that launches GPU work sets the limit
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 1
    assert instance.event_log_storage.get_concurrency_keys() == {GPU_POOL}
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 2)  # set by hand: left alone
    tick(instance)
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 2


def test_the_run_queue_keeps_two_runs_of_one_partition_apart(dagster_home):
    from dagster._utils.tags import (
        TagConcurrencyLimitsCounter,  # the queue's own counter, fed our instance config
    )

    with dg.DagsterInstance.get() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    for config in (REPO / "infra" / "dagster-postgres.yaml", REPO / "dagster_home" / "dagster.yaml"):
        assert yaml.safe_load(config.read_text())["concurrency"]["runs"]["tag_concurrency_limits"] == limits

    def run(partition):
        return dg.DagsterRun(job_name="coco_ingest", tags={"dagster/partition": partition})

    counter = TagConcurrencyLimitsCounter(limits, [run("shard-00000")])  # a sensor run in progress
    assert counter.is_blocked(run("shard-00000"))  # a backfill of the same partition waits
    assert not counter.is_blocked(run("shard-00001"))


def test_definitions_load_with_the_expected_graph(dagster_home):
    from dlk_assets.profile import load_definitions

    defs = load_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    per_source = {f"{p}_{role}" for p in PREFIXES for role in ("index", "active_model", "retired_models")}
    assert keys == {"coco_files", "coco_images", "coco_image_embeddings", "video_files", "video_chunks", "video_chunk_embeddings",
                    "swe_traces", "swe_memory", "swe_memory_embeddings", "documents", "document_chunks",
                    "document_chunk_embeddings", *per_source, *SLICES, "slice_finetune"}
    lite0, minilm = build_encoder("efficientnet-lite0", "cpu"), build_encoder("minilm", "cpu")
    for embeddings, index, cutover, fingerprint in (
            ("coco_image_embeddings", "coco_index", "coco_active_model", lite0.fingerprint),
            ("video_chunk_embeddings", "video_index", "video_active_model", lite0.fingerprint),
            ("swe_memory_embeddings", "memory_index", "memory_active_model", minilm.fingerprint),
            ("document_chunk_embeddings", "documents_index", "documents_active_model", minilm.fingerprint)):
        node = graph.get(dg.AssetKey(embeddings))
        # The target encoder's fingerprint marks the embeddings, the index and the cutover when a model changes.
        assert node.code_version == graph.get(dg.AssetKey(index)).code_version == graph.get(dg.AssetKey(cutover)).code_version == fingerprint
        assert node.pools == {"gpu"} and node.backfill_policy == dg.BackfillPolicy.multi_run(8)
        spec = json.loads(defs.get_assets_def(embeddings).op.tags["dagster-k8s/config"])
        assert spec["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert node.automation_condition is not None and graph.get(dg.AssetKey(cutover)).automation_condition is not None
    # Every step that runs an encoder holds the gpu pool; the ones that only read or write rows do not.
    encoding = {k for k in keys if k.endswith(("embeddings", "_index", "_active_model", "_slices"))}
    assert all(graph.get(dg.AssetKey(k)).pools == ({"gpu"} if k in encoding else set()) for k in keys)
    for rows in ("coco_images", "swe_memory", "document_chunks"):  # lake to lake: one run takes a whole range
        assert graph.get(dg.AssetKey(rows)).backfill_policy == dg.BackfillPolicy.single_run()
    assert graph.get(dg.AssetKey("video_chunks")).code_version == "2-chunk4s"
    assert graph.get(dg.AssetKey("coco_images")).metadata["dagster/table_name"] == "coco_images"
    assert graph.get(dg.AssetKey("swe_traces")).partitions_def.name == "swe_shards"
    assert graph.get(dg.AssetKey("documents")).partitions_def.name == "document_folders"
    for slices, cutover in SLICES.items():  # each source's slices hang off its own cutover only: no staleness across sources
        assert {p.to_user_string() for p in graph.get(dg.AssetKey(slices)).parent_keys} == {cutover}
    assert "coco_cats" in graph.get(dg.AssetKey("coco_slices")).partitions_def.get_partition_keys()
    assert "videos_espresso" in graph.get(dg.AssetKey("video_slices")).partitions_def.get_partition_keys()
    key_checks = {f"{t}_keys_unique" for t in ("coco_files", "coco_images", "smartspaces_video_files", "smartspaces_video_chunks",
                                               "swe_traces", "swe_memory", "documents", "document_chunks")}
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {f"{p}_{c}" for p in PREFIXES
                      for c in ("embedded_by_target", "counts_match", "vectors_valid", "index_used", "cutover_gate")} | key_checks
    blocking = {key.name for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}
    assert blocking == {f"{p}_{c}" for p in PREFIXES for c in ("counts_match", "vectors_valid", "index_used")} | key_checks
    for job, assets in (("coco_shard_job", {"coco_files"}), ("smartspaces_video_job", {"video_files", "video_chunks"}),
                        ("swe_shard_job", {"swe_traces"}), ("document_folder_job", {"documents"})):
        assert {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.executable_asset_keys} == assets
    sensors = {sensor.name: sensor for sensor in defs.sensors}
    assert set(sensors) == {"coco_shard_sensor", "smartspaces_video_sensor", "swe_shard_sensor", "document_folder_sensor",
                            "dlk_automation_sensor"}
    # The automation sensor is ours and starts running with `dagster dev`; Dagster's default one (stopped) is not created.
    automation = sensors["dlk_automation_sensor"]
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    assert all(sensor.default_status == dg.DefaultSensorStatus.RUNNING for sensor in sensors.values())


def test_discovery_reruns_only_a_shard_registered_partial_that_grew():
    from dlk_assets.sources.shard_discovery import DiscoveryCursor, discover_shards

    registered = ["shard-00000", "shard-00001"]
    # 5 positions in shards of 3: shard-00001 holds 3..4 of 3..5. The source grows to 7.
    grew = discover_shards(registered, DiscoveryCursor(2, 5), positions=7, shard_size=3, limit=10)
    assert (grew.new_keys, grew.grown_key, grew.cursor) == (["shard-00002"], "shard-00001", DiscoveryCursor(3, 7))
    # Registered full (6 of 6): growth makes only new shards; the limit caps them.
    full = discover_shards(registered, DiscoveryCursor(2, 6), positions=20, shard_size=3, limit=2)
    assert (full.new_keys, full.grown_key, full.cursor) == (["shard-00002", "shard-00003"], None, DiscoveryCursor(4, 20))
    # No growth, or an earlier cursor that never saw the positions: nothing runs again.
    assert discover_shards(registered, DiscoveryCursor(2, 5), 5, 3, 10).grown_key is None
    assert discover_shards(registered, DiscoveryCursor.parse("2"), 7, 3, 10).grown_key is None
