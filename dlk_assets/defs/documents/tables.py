"""The document tables' schemas. `documents` is where a file enters the lake; `document_chunks` holds the
vector record's fields (`vectors.schema`) before embedding, plus every table's lineage columns."""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema, lineage_columns
from dlk_assets.vectors.schema import TENANT, chunk_columns

DOCUMENTS_TABLE = TableSchema("documents", (
    Column("document_id", Kind.TEXT), Column("folder", Kind.TEXT), Column("path", Kind.TEXT),
    Column("file_id", Kind.TEXT), Column("sha256", Kind.TEXT), Column("bytes", Kind.INT),
    Column("content_type", Kind.TEXT), Column("title", Kind.TEXT), Column(TENANT, Kind.TEXT), *lineage_columns(),
))

DOCUMENT_CHUNKS = TableSchema("document_chunks", (*chunk_columns(), *lineage_columns()))
