"""Registers new COCO shards as partitions and asks for them to be materialized."""

import dagster as dg

from dlk_assets.defs.coco.assets import coco_shard_job
from dlk_assets.defs.coco.discovery import new_shard_keys, next_shard_index
from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.resources import CocoSourceResource


@dg.sensor(job=coco_shard_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def coco_shard_sensor(context: dg.SensorEvaluationContext, coco_source: CocoSourceResource) -> dg.SensorResult:
    """Looks past the last registered shard; registers at most `max_new_shards_per_tick` new ones per tick.

    The cursor is the next shard index to probe; it also survives partitions deleted in the UI.
    """
    registered = context.instance.get_dynamic_partitions(coco_shards.name)
    start = max(int(context.cursor or 0), next_shard_index(registered))
    keys = new_shard_keys(coco_source.stream(), coco_source.shard_size, start, coco_source.max_new_shards_per_tick)
    if not keys:
        return dg.SensorResult(skip_reason=f"no shard at index {start} yet", cursor=str(start))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=key) for key in keys],
        dynamic_partitions_requests=[coco_shards.build_add_request(keys)],
        cursor=str(start + len(keys)),
    )
