"""The vector record: exactly the seed's fields, plus the tenant they belong to as a column of its own.

`metadata.tenant_id` is what a client sends; the layer copies it into `tenant_id` so that every read
is scoped by a plain column comparison that no metadata filter can widen.
"""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema

TENANT = "tenant_id"
EMBEDDING = "embedding"
TEXT_FIELDS = ("id", "document_id", "chunk_id", "content", "content_hash", "content_type", "language", "model",
               "created_at", "updated_at")
INT_FIELDS = ("chunk_index", "chunk_count")
# The seed's fields in its order, without the vector.
RECORD_FIELDS = ("id", "document_id", "chunk_id", "content", "content_hash", "content_type", "language",
                 "chunk_index", "chunk_count", "model", "metadata", "created_at", "updated_at")


def record_columns(dim: int) -> tuple[Column, ...]:
    """Every column of a vector-record table: the seed's fields, the embedding of `dim`, and `tenant_id`."""
    return (*chunk_columns(), Column(EMBEDDING, Kind.VECTOR, dim), Column("model", Kind.TEXT))


def chunk_columns() -> tuple[Column, ...]:
    """A record's columns before it is embedded: everything but `embedding` and `model`."""
    kinds = {name: Kind.TEXT for name in TEXT_FIELDS} | {name: Kind.INT for name in INT_FIELDS} | {"metadata": Kind.JSON}
    return (*(Column(name, kinds[name]) for name in RECORD_FIELDS if name != "model"), Column(TENANT, Kind.TEXT))


def record_schema(table: str, dim: int) -> TableSchema:
    """A vector-record table of `dim`-dimensional embeddings."""
    return TableSchema(table, record_columns(dim))
