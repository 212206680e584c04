"""The body every shard sensor shares: probe past the last registered shard, register a few, run them."""

import dagster as dg

from dlk_assets.sources.shard_discovery import (
    ShardedStream,
    new_shard_keys,
    next_shard_index,
)


def register_new_shards(context: dg.SensorEvaluationContext, partitions: dg.DynamicPartitionsDefinition,
                        stream: ShardedStream, shard_size: int, limit: int) -> dg.SensorResult:
    """Registers at most `limit` new shards and requests one run per shard (run key = shard key).

    The cursor is the next shard index to probe; it also survives partitions deleted in the UI.
    """
    registered = context.instance.get_dynamic_partitions(partitions.name)
    start = max(int(context.cursor or 0), next_shard_index(registered))
    keys = new_shard_keys(stream, shard_size, start, limit)
    if not keys:
        return dg.SensorResult(skip_reason=f"no shard at index {start} yet", cursor=str(start))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=key) for key in keys],
        dynamic_partitions_requests=[partitions.build_add_request(keys)],
        cursor=str(start + len(keys)),
    )
