"""Checks that guard the video index (blocking: video slices do not build on a broken index)."""


import dagster as dg
import numpy as np

from dlk_assets.defs.check_results import vectors_valid
from dlk_assets.defs.smartspaces.assets import video_index
from dlk_assets.defs.smartspaces.tables import (
    VIDEO_CHUNKS,
    VIDEO_FILES,
    chunk_embeddings_schema,
)
from dlk_assets.lake.inspection import partition_count_mismatches
from dlk_assets.resources import ImageEncoderResource, LakeResource
from dlk_assets.retrieval.requests import VectorSearch


@dg.asset_check(asset=video_index, blocking=True, description="Per video: every chunk has an embedding, and every video has chunks.")
def video_counts_match(lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.AssetCheckResult:
    tables = lake.lake()
    videos = tables.table(VIDEO_FILES).partition_counts()
    chunks = tables.table(VIDEO_CHUNKS).partition_counts()
    embeddings = tables.table(chunk_embeddings_schema(image_encoder.encoder())).partition_counts()
    mismatched = partition_count_mismatches(chunks, embeddings)
    without_chunks = sorted(v for v in videos if not chunks.get(v))
    return dg.AssetCheckResult(
        passed=not mismatched and not without_chunks,
        metadata={"videos": len(videos), "chunks": sum(chunks.values()),
                  "mismatches": dg.MetadataValue.json({v: list(c) for v, c in mismatched.items()}),
                  "videos_without_chunks": dg.MetadataValue.json(without_chunks)},
        description=None if not mismatched and not without_chunks else
        f"(chunks, embeddings) disagree for {mismatched}; no chunks for {without_chunks}",
    )


@dg.asset_check(asset=video_index, blocking=True, description="Every chunk vector has the encoder's dimension and finite values.")
def video_vectors_valid(lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.AssetCheckResult:
    encoder = image_encoder.encoder()
    table = lake.lake().table(chunk_embeddings_schema(encoder))
    return vectors_valid(table, "embedding", encoder.dim)


@dg.asset_check(asset=video_index, blocking=True, description="The MaxSim and scene_name indexes exist; clip searches use the index.")
def video_indexes_exist(lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.AssetCheckResult:
    encoder = image_encoder.encoder()
    table = lake.lake().table(chunk_embeddings_schema(encoder))
    indexes = table.indexes()
    plan = table.explain(VectorSearch("embedding", np.ones((1, encoder.dim), np.float32), "maxsim", 1))
    passed = indexes.get("embedding") == "pooled_quantized" and indexes.get("scene_name") == "exact_text" and "Index Scan" in plan
    return dg.AssetCheckResult(passed=passed, metadata={"indexes": dg.MetadataValue.json(indexes), "plan": dg.MetadataValue.md(f"```\n{plan}\n```")})
