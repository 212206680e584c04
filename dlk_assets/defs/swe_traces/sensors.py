"""Registers new SWE-trace shards as partitions and asks for them to be ingested."""

import dagster as dg

from dlk_assets.defs.shard_sensors import register_new_shards
from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.resources import SweTraceSourceResource

SWE_JOB = "swe_shard_job"


@dg.sensor(job_name=SWE_JOB, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def swe_shard_sensor(context: dg.SensorEvaluationContext, swe_source: SweTraceSourceResource) -> dg.SensorResult:
    """Registers at most `max_new_shards_per_tick` new trace shards per tick and runs `swe_shard_job` on each."""
    return register_new_shards(context, swe_shards, swe_source.stream(), swe_source.shard_size, swe_source.max_new_shards_per_tick)
