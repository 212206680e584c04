"""COCO: files -> images -> image embeddings -> index, one dynamic partition per shard of the stream."""
