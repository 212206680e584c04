"""SWE-trace partitions: one dynamic partition per shard of the source, registered by `swe_shard_sensor`."""

import dagster as dg

swe_shards = dg.DynamicPartitionsDefinition(name="swe_shards")
