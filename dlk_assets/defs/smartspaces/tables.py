"""The SmartSpaces tables' schemas."""

from __future__ import annotations

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.schema import Column, Kind, TableSchema, model_slug

LINEAGE = (Column("source", Kind.TEXT), Column("run_id", Kind.TEXT))
VIDEO_COLUMNS = (Column("video_id", Kind.TEXT), Column("scene_name", Kind.TEXT), Column("camera_id", Kind.TEXT))
CHUNK_COLUMNS = (
    *VIDEO_COLUMNS, Column("chunk_index", Kind.INT), Column("start_s", Kind.FLOAT), Column("end_s", Kind.FLOAT),
    Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
)

VIDEO_FILES = TableSchema("smartspaces_video_files", (
    *VIDEO_COLUMNS, Column("repo_path", Kind.TEXT), Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT),
    Column("size", Kind.INT), Column("duration_s", Kind.FLOAT), Column("fps", Kind.FLOAT),
    Column("width", Kind.INT), Column("height", Kind.INT), Column("codec", Kind.TEXT), *LINEAGE,
))

VIDEO_CHUNKS = TableSchema("smartspaces_video_chunks", (*CHUNK_COLUMNS, Column("metadata", Kind.JSON), *LINEAGE))


def chunk_embeddings_schema(encoder: Encoder) -> TableSchema:
    """One chunk-embeddings table per encoder fingerprint; chunk columns are copied in for filters (no joins)."""
    return TableSchema(f"smartspaces_chunk_embeddings__{model_slug(encoder.fingerprint)}", (
        *CHUNK_COLUMNS, Column("model", Kind.TEXT), Column("frames_per_chunk", Kind.INT),
        Column("frames", Kind.JSON), Column("embedding", Kind.MULTI_VECTOR, encoder.dim), *LINEAGE,
    ))
