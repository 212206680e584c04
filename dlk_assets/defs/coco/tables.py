"""The COCO tables' schemas."""

from __future__ import annotations

from dlk_assets.encoders.base import Encoder
from dlk_assets.encoders.efficientnet_labels import (
    FEATURE_DIM,
    EfficientNetLabelEncoder,
)
from dlk_assets.lake.schema import Column, Kind, TableSchema, model_slug

LINEAGE = (Column("source", Kind.TEXT), Column("run_id", Kind.TEXT))

COCO_FILES = TableSchema("coco_files", (
    Column("image_id", Kind.INT), Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
    Column("filename", Kind.TEXT), Column("content_type", Kind.TEXT), Column("size", Kind.INT),
    # The annotation exactly as it arrived (boxes still xyxy); coco_images turns it into typed columns.
    Column("source_record", Kind.JSON), *LINEAGE,
))

COCO_IMAGES = TableSchema("coco_images", (
    Column("image_id", Kind.INT), Column("width", Kind.INT), Column("height", Kind.INT),
    Column("bboxes", Kind.BOXES), Column("category_ids", Kind.INT_LIST),
    Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT), Column("metadata", Kind.JSON), *LINEAGE,
))


def embeddings_schema(encoder: Encoder) -> TableSchema:
    """One embeddings table per encoder fingerprint: a new model fills a new table while the old one serves.

    Filterable image columns are copied in because TQL has no joins.
    """
    columns = [
        Column("image_id", Kind.INT), Column("width", Kind.INT), Column("height", Kind.INT),
        Column("category_ids", Kind.INT_LIST), Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
        Column("metadata", Kind.JSON), Column("model", Kind.TEXT), Column("labels", Kind.JSON),
        Column("embedding", Kind.MULTI_VECTOR, encoder.dim),
    ]
    if isinstance(encoder, EfficientNetLabelEncoder):
        columns.append(Column("image_features", Kind.VECTOR, FEATURE_DIM))
    return TableSchema(f"coco_image_embeddings__{model_slug(encoder.fingerprint)}", (*columns, *LINEAGE))
