"""The end-to-end demo: register every partition, materialize each source's graph, index, slices."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from dlk_assets.defs.coco import assets as coco_assets
from dlk_assets.defs.coco import checks as coco_checks
from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.slices import assets as slice_assets
from dlk_assets.defs.smartspaces import assets as smartspaces_assets
from dlk_assets.defs.smartspaces import checks as smartspaces_checks
from dlk_assets.defs.smartspaces.partitions import smartspaces_videos
from dlk_assets.defs.swe_traces import assets as swe_assets
from dlk_assets.defs.swe_traces import checks as swe_checks
from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.sources.shard_discovery import new_shard_keys, next_shard_index

# The console shows the assets' own progress lines (INFO), not every engine event (DEBUG).
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
ALL_ASSETS = [
    *dg.load_assets_from_modules([coco_assets, smartspaces_assets, swe_assets, slice_assets]),
    *dg.load_asset_checks_from_modules([coco_checks, smartspaces_checks, swe_checks]),
]


def register_all_shards(instance: dg.DagsterInstance, source, partitions: dg.DynamicPartitionsDefinition,
                        batch: int = 100) -> list[str]:
    """Register every shard a streamed source holds (what its sensor does over several ticks)."""
    registered = instance.get_dynamic_partitions(partitions.name)
    while keys := new_shard_keys(source.stream(), source.shard_size, next_shard_index(registered), batch):
        instance.add_dynamic_partitions(partitions.name, keys)
        registered = registered + keys
    return sorted(registered)


def register_all_videos(instance: dg.DagsterInstance, resources: dict) -> list[str]:
    """Register every video the source lists (what the video sensor does over several ticks)."""
    listed = [video.video_id for video in resources["smartspaces_source"].source().list_videos()]
    registered = set(instance.get_dynamic_partitions(smartspaces_videos.name))
    new = [video_id for video_id in listed if video_id not in registered]
    if new:
        instance.add_dynamic_partitions(smartspaces_videos.name, new)
    return sorted(registered | set(new))


def _materialize_source(instance: dg.DagsterInstance, resources: dict, keys: list[str], what: str, partitioned: list,
                        index, log: Callable[[str], None]) -> None:
    """Each partition through the source's partitioned assets, then its index (whose checks must pass)."""
    if not keys:
        raise RuntimeError(f"the {what} source has nothing to ingest")
    for key in keys:
        log(f"materializing {what} {key}")
        _materialize(dg.AssetSelection.assets(*partitioned), instance, resources, partition_key=key)
    log(f"building {index.key.to_user_string()} and running its checks")
    _materialize(dg.AssetSelection.assets(index), instance, resources)


def materialize_coco(instance: dg.DagsterInstance, resources: dict, log: Callable[[str], None] = print) -> None:
    """Every shard through files -> images -> embeddings, then the index (with its checks)."""
    _materialize_source(instance, resources, register_all_shards(instance, resources["coco_source"], coco_shards), "COCO",
                        [coco_assets.coco_files, coco_assets.coco_images, coco_assets.coco_image_embeddings], coco_assets.coco_index, log)


def materialize_videos(instance: dg.DagsterInstance, resources: dict, log: Callable[[str], None] = print) -> None:
    """Every video through files -> chunks -> embeddings, then the index (with its checks)."""
    _materialize_source(instance, resources, register_all_videos(instance, resources), "SmartSpaces video",
                        [smartspaces_assets.video_files, smartspaces_assets.video_chunks, smartspaces_assets.video_chunk_embeddings],
                        smartspaces_assets.video_index, log)


def materialize_traces(instance: dg.DagsterInstance, resources: dict, log: Callable[[str], None] = print) -> None:
    """Every trace shard through traces -> memory -> embeddings, then the memory index (with its checks)."""
    _materialize_source(instance, resources, register_all_shards(instance, resources["swe_source"], swe_shards), "SWE traces",
                        [swe_assets.swe_traces, swe_assets.swe_memory, swe_assets.swe_memory_embeddings], swe_assets.memory_index, log)


def materialize_slices(instance: dg.DagsterInstance, resources: dict, log: Callable[[str], None] = print) -> None:
    for name in slice_assets.slice_names.get_partition_keys():
        log(f"exporting training slice {name}")
        _materialize(dg.AssetSelection.assets(slice_assets.training_slices), instance, resources, partition_key=name)


def materialize_everything(instance: dg.DagsterInstance, resources: dict, log: Callable[[str], None] = print) -> None:
    """Every source end to end, then every training slice."""
    materialize_coco(instance, resources, log)
    materialize_videos(instance, resources, log)
    materialize_traces(instance, resources, log)
    materialize_slices(instance, resources, log)


def _materialize(selection, instance, resources, partition_key: str | None = None) -> None:
    result = dg.materialize(ALL_ASSETS, selection=selection, instance=instance, resources=resources,
                            partition_key=partition_key, raise_on_error=True, run_config=QUIET_CONSOLE)
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    if failed:
        raise RuntimeError(f"checks failed: {', '.join(c.check_name for c in failed)}")
