"""Registers new COCO shards as partitions and asks for them to be ingested."""

import dagster as dg

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.shard_sensors import register_new_shards
from dlk_assets.resources import CocoSourceResource

COCO_JOB = "coco_shard_job"


@dg.sensor(job_name=COCO_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def coco_shard_sensor(context: dg.SensorEvaluationContext, coco_source: CocoSourceResource) -> dg.SensorResult:
    """Registers at most `max_new_shards_per_tick` new COCO shards per tick and runs `coco_shard_job` on each."""
    return register_new_shards(context, coco_shards, coco_source.stream(), coco_source.shard_size, coco_source.max_new_shards_per_tick)
