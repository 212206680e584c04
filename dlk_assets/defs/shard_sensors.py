"""What every shard sensor shares: probe past the last registered shard, register a few, run them."""

import dagster as dg

from dlk_assets.defs.gpu import ensure_gpu_pool
from dlk_assets.sources.shard_discovery import (
    DiscoveryCursor,
    ShardedStream,
    discover_shards,
)


def register_new_shards(context: dg.SensorEvaluationContext, partitions: dg.DynamicPartitionsDefinition,
                        stream: ShardedStream, shard_size: int, limit: int) -> dg.SensorResult:
    """Registers at most `limit` new shards and requests one run per shard.

    The run key is the shard key, so a tick evaluated twice (a retried tick, two daemons) launches
    nothing twice. The cursor keeps the next shard index to probe (it also survives partitions
    deleted in the UI) and how many positions the source held: when the source grows into a shard
    that was registered partial, that shard runs again (run key `<shard>@<positions>`). Probing reads
    no rows: the source's layout (its files' row counts, each footer read once and cached) says how
    many positions it holds. Every tick makes sure the `gpu` pool has a limit (sensors are what runs
    from the first `dagster dev`, before any GPU work is launched by them, automation or a backfill).
    """
    ensure_gpu_pool(context.instance)
    registered = context.instance.get_dynamic_partitions(partitions.name)
    positions = stream.positions()
    found = discover_shards(registered, DiscoveryCursor.parse(context.cursor), positions, shard_size, limit)
    requests = [dg.RunRequest(partition_key=key, run_key=key) for key in found.new_keys]
    if found.grown_key:
        context.log.info(f"{found.grown_key} was registered partial and the source has grown into it: running it again")
        requests.insert(0, dg.RunRequest(partition_key=found.grown_key, run_key=f"{found.grown_key}@{positions}"))
    if not requests:
        return dg.SensorResult(skip_reason=f"no shard at index {found.cursor.next_shard} yet: the source has nothing at "
                                           f"stream position {found.cursor.next_shard * shard_size} ({stream.describe_size()}; "
                                           f"{len(registered)} shard(s) of {shard_size} registered)",
                               cursor=found.cursor.serialize())
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[partitions.build_add_request(found.new_keys)] if found.new_keys else [],
        cursor=found.cursor.serialize(),
    )


def register_all_shards(instance: dg.DagsterInstance, source, partitions: dg.DynamicPartitionsDefinition) -> list[str]:
    """Register every shard a sharded source holds now (what its sensor does over several ticks)."""
    registered = instance.get_dynamic_partitions(partitions.name)
    found = discover_shards(registered, DiscoveryCursor(), source.stream().positions(), source.shard_size, limit=10**9)
    if found.new_keys:
        instance.add_dynamic_partitions(partitions.name, found.new_keys)
    return sorted(registered + found.new_keys)
