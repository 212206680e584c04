"""Checks that guard the COCO index (blocking: slices do not build on a broken index)."""


import dagster as dg
import numpy as np

from dlk_assets.defs.check_results import counts_agree, vectors_valid
from dlk_assets.defs.coco.assets import coco_index
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES, embeddings_schema
from dlk_assets.resources import ImageEncoderResource, LakeResource
from dlk_assets.retrieval.requests import VectorSearch


@dg.asset_check(asset=coco_index, blocking=True, description="Per shard: files == image rows == embeddings.")
def coco_counts_match(lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.AssetCheckResult:
    tables = lake.lake()
    files = tables.table(COCO_FILES).partition_counts()
    images = tables.table(COCO_IMAGES).partition_counts()
    embeddings = tables.table(embeddings_schema(image_encoder.encoder())).partition_counts()
    return counts_agree(("files", "images", "embeddings"), (files, images, embeddings))


@dg.asset_check(asset=coco_index, blocking=True, description="Every stored vector has the encoder's dimension and finite values.")
def coco_vectors_valid(lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.AssetCheckResult:
    encoder = image_encoder.encoder()
    table = lake.lake().table(embeddings_schema(encoder))
    return vectors_valid(table, "embedding", encoder.dim)


@dg.asset_check(asset=coco_index, blocking=True, description="The MaxSim index exists and searches use it.")
def coco_index_exists(lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.AssetCheckResult:
    encoder = image_encoder.encoder()
    table = lake.lake().table(embeddings_schema(encoder))
    kind = table.indexes().get("embedding")
    probe = VectorSearch("embedding", np.ones((1, encoder.dim), np.float32), "maxsim", 1)
    plan = table.explain(probe)
    passed = kind == "pooled_quantized" and "Index Scan" in plan
    return dg.AssetCheckResult(passed=passed, metadata={"index": kind or "none", "plan": dg.MetadataValue.md(f"```\n{plan}\n```")})
