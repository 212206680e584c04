"""What every shard sensor shares: probe past the last registered shard, register a few, run them."""

import dagster as dg

from dlk_assets.defs.gpu import ensure_gpu_pool
from dlk_assets.sources.shard_discovery import (
    ShardedStream,
    new_shard_keys,
    next_shard_index,
)


def register_new_shards(context: dg.SensorEvaluationContext, partitions: dg.DynamicPartitionsDefinition,
                        stream: ShardedStream, shard_size: int, limit: int) -> dg.SensorResult:
    """Registers at most `limit` new shards and requests one run per shard.

    The run key is the shard key, so a tick evaluated twice (a retried tick, two daemons) launches
    nothing twice. The cursor is the next shard index to probe; it also survives partitions
    deleted in the UI. Every tick makes sure the `gpu` pool has a limit (sensors are what runs from
    the first `dagster dev`, before any GPU work is launched by them, automation or a backfill).
    """
    ensure_gpu_pool(context.instance)
    registered = context.instance.get_dynamic_partitions(partitions.name)
    start = max(int(context.cursor or 0), next_shard_index(registered))
    keys = new_shard_keys(stream, shard_size, start, limit)
    if not keys:
        return dg.SensorResult(skip_reason=f"no shard at index {start} yet: the source has nothing at stream position "
                                           f"{start * shard_size} ({len(registered)} shard(s) of {shard_size} registered)",
                               cursor=str(start))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=key) for key in keys],
        dynamic_partitions_requests=[partitions.build_add_request(keys)],
        cursor=str(start + len(keys)),
    )


def register_all_shards(instance: dg.DagsterInstance, source, partitions: dg.DynamicPartitionsDefinition,
                        batch: int = 100) -> list[str]:
    """Register every shard a streamed source holds now (what its sensor does over several ticks)."""
    registered = instance.get_dynamic_partitions(partitions.name)
    while keys := new_shard_keys(source.stream(), source.shard_size, next_shard_index(registered), batch):
        instance.add_dynamic_partitions(partitions.name, keys)
        registered = registered + keys
    return sorted(registered)
