"""Checks that guard the memory index (blocking: nothing downstream reads a broken memory)."""


import dagster as dg
import numpy as np

from dlk_assets.defs.check_results import counts_agree, vectors_valid
from dlk_assets.defs.swe_traces.assets import memory_index
from dlk_assets.defs.swe_traces.tables import (
    SWE_MEMORY,
    SWE_TRACES,
    memory_embeddings_schema,
)
from dlk_assets.resources import LakeResource, TextEncoderResource
from dlk_assets.retrieval.requests import VectorSearch


@dg.asset_check(asset=memory_index, blocking=True, description="Per shard: traces == memory rows == embeddings.")
def memory_counts_match(lake: LakeResource, text_encoder: TextEncoderResource) -> dg.AssetCheckResult:
    tables = lake.lake()
    traces = tables.table(SWE_TRACES).partition_counts()
    memory = tables.table(SWE_MEMORY).partition_counts()
    embeddings = tables.table(memory_embeddings_schema(text_encoder.encoder())).partition_counts()
    return counts_agree(("traces", "memory", "embeddings"), (traces, memory, embeddings), extra={"traces": sum(traces.values())})


@dg.asset_check(asset=memory_index, blocking=True, description="Every memory vector has the encoder's dimension and finite values.")
def memory_vectors_valid(lake: LakeResource, text_encoder: TextEncoderResource) -> dg.AssetCheckResult:
    encoder = text_encoder.encoder()
    table = lake.lake().table(memory_embeddings_schema(encoder))
    return vectors_valid(table, "embedding", encoder.dim)


@dg.asset_check(asset=memory_index, blocking=True, description="Vector and BM25 indexes exist; vector search uses its index.")
def memory_indexes_exist(lake: LakeResource, text_encoder: TextEncoderResource) -> dg.AssetCheckResult:
    encoder = text_encoder.encoder()
    table = lake.lake().table(memory_embeddings_schema(encoder))
    indexes = table.indexes()
    plan = table.explain(VectorSearch("embedding", np.ones(encoder.dim, np.float32), "vector", 1))
    passed = indexes.get("embedding") == "clustered" and indexes.get("task") == "bm25" and "Index Scan" in plan
    return dg.AssetCheckResult(passed=passed, metadata={"indexes": dg.MetadataValue.json(indexes), "plan": dg.MetadataValue.md(f"```\n{plan[:2000]}\n```")})
