"""COCO partitions: one dynamic partition per shard of the stream, registered by `coco_shard_sensor`."""

import dagster as dg

coco_shards = dg.DynamicPartitionsDefinition(name="coco_shards")
