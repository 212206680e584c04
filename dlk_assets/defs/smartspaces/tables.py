"""The SmartSpaces tables' schemas (the per-model chunk embeddings tables follow from `spec.VIDEOS`)."""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema, lineage_columns

VIDEO_COLUMNS = (Column("video_id", Kind.TEXT), Column("scene_name", Kind.TEXT), Column("camera_id", Kind.TEXT))
CHUNK_COLUMNS = (
    *VIDEO_COLUMNS, Column("chunk_index", Kind.INT), Column("start_s", Kind.FLOAT), Column("end_s", Kind.FLOAT),
    Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
)

VIDEO_FILES = TableSchema("smartspaces_video_files", (
    *VIDEO_COLUMNS, Column("repo_path", Kind.TEXT), Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
    Column("size", Kind.INT), Column("duration_s", Kind.FLOAT), Column("fps", Kind.FLOAT),
    Column("width", Kind.INT), Column("height", Kind.INT), Column("codec", Kind.TEXT), *lineage_columns(),
))

VIDEO_CHUNKS = TableSchema("smartspaces_video_chunks", (*CHUNK_COLUMNS, Column("metadata", Kind.JSON), *lineage_columns()))
