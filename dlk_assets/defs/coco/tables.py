"""The COCO tables' schemas (the per-model embeddings tables follow from `spec.COCO`)."""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema, lineage_columns

COCO_FILES = TableSchema("coco_files", (
    Column("image_id", Kind.INT), Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
    Column("filename", Kind.TEXT), Column("content_type", Kind.TEXT), Column("size", Kind.INT),
    # The annotation exactly as it arrived (boxes still xyxy); coco_images turns it into typed columns.
    Column("source_record", Kind.JSON), *lineage_columns(),
))

COCO_IMAGES = TableSchema("coco_images", (
    Column("image_id", Kind.INT), Column("width", Kind.INT), Column("height", Kind.INT),
    Column("bboxes", Kind.BOXES), Column("category_ids", Kind.INT_LIST),
    Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT), Column("metadata", Kind.JSON), *lineage_columns(),
))
