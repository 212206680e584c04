"""The shard sensor on an ephemeral instance, and the definitions as Dagster loads them."""

import json

import dagster as dg

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.sensors import coco_shard_sensor
from dlk_assets.resources import CocoSourceResource


def test_sensor_registers_shards_incrementally_with_a_cursor():
    instance = dg.DagsterInstance.ephemeral()
    source = CocoSourceResource(shard_size=3, max_new_shards_per_tick=2)
    first = coco_shard_sensor(dg.build_sensor_context(instance=instance, resources={"coco_source": source}))
    assert [r.partition_key for r in first.run_requests] == ["shard-00000", "shard-00001"]
    assert [r.run_key for r in first.run_requests] == ["shard-00000", "shard-00001"] and first.cursor == "2"
    instance.add_dynamic_partitions(coco_shards.name, list(first.dynamic_partitions_requests[0].partition_keys))
    second = coco_shard_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"coco_source": source}))
    assert [r.partition_key for r in second.run_requests] == ["shard-00002"] and second.cursor == "3"
    instance.add_dynamic_partitions(coco_shards.name, ["shard-00002"])
    third = coco_shard_sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor, resources={"coco_source": source}))
    assert not third.run_requests and "no shard at index 3" in third.skip_reason.skip_message


def test_definitions_load_with_the_expected_graph():
    from dlk_assets.definitions import defs
    from dlk_assets.profile import profile_resources

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"coco_files", "coco_images", "coco_image_embeddings", "coco_index", "video_files", "video_chunks",
                    "video_chunk_embeddings", "video_index", "swe_traces", "swe_memory", "swe_memory_embeddings",
                    "memory_index", "training_slices"}
    fingerprint = profile_resources()["image_encoder"].encoder().fingerprint
    for name in ("coco_image_embeddings", "video_chunk_embeddings"):
        embeddings = graph.get(dg.AssetKey(name))
        assert embeddings.code_version == fingerprint and embeddings.pools == {"gpu"}
        spec = json.loads(defs.get_assets_def(name).op.tags["dagster-k8s/config"])
        assert spec["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert graph.get(dg.AssetKey("video_chunks")).code_version == "1-chunk4s"
    memory = graph.get(dg.AssetKey("swe_memory_embeddings"))
    assert memory.code_version == profile_resources()["text_encoder"].encoder().fingerprint and memory.pools == {"gpu"}
    assert graph.get(dg.AssetKey("swe_traces")).partitions_def.name == "swe_shards"
    assert graph.get(dg.AssetKey("video_chunks")).partitions_def.name == "smartspaces_videos"
    slices = graph.get(dg.AssetKey("training_slices"))
    assert "coco_cats" in slices.partitions_def.get_partition_keys() and "videos_espresso" in slices.partitions_def.get_partition_keys()
    assert {p.to_user_string() for p in slices.parent_keys} == {"coco_index", "video_index"}
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {"coco_counts_match", "coco_vectors_valid", "coco_index_exists",
                      "video_counts_match", "video_vectors_valid", "video_indexes_exist",
                      "memory_counts_match", "memory_vectors_valid", "memory_indexes_exist"}
    assert defs.get_job_def("coco_shard_job") and defs.get_sensor_def("coco_shard_sensor")
    assert defs.get_job_def("smartspaces_video_job") and defs.get_sensor_def("smartspaces_video_sensor")
    assert defs.get_job_def("swe_shard_job") and defs.get_sensor_def("swe_shard_sensor")
