"""Documents described once: what the shared pipeline builds from (embeddings, indexes, checks, cutover)."""

from __future__ import annotations

import uuid
from typing import Any

from dlk_assets.defs.documents.assets import document_chunks, documents
from dlk_assets.defs.documents.partitions import document_folders
from dlk_assets.defs.documents.sensors import (
    DOCUMENTS_JOB,
    document_folder_sensor,
    register_all_folders,
)
from dlk_assets.defs.documents.tables import DOCUMENT_CHUNKS, DOCUMENTS_TABLE
from dlk_assets.defs.pipeline.hits import RANK, SCORE, HitColumn, value_column
from dlk_assets.defs.pipeline.spec import Embedder, Lineage, SearchSpec, SourceSpec
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.schema import Column, Kind
from dlk_assets.retrieval.filters import Comparison, Filter
from dlk_assets.retrieval.text_modes import MODES, TextSearch
from dlk_assets.vectors.schema import EMBEDDING, chunk_columns

RESULT_COLUMNS = ("id", "document_id", "chunk_id", "content", "content_type", "language", "chunk_index", "chunk_count",
                  "metadata", "tenant_id", "updated_at")
search_documents = TextSearch("documents", "content", RESULT_COLUMNS)


def record_vector_columns(encoder: Encoder) -> tuple[Column, ...]:
    """What embedding adds to a chunk's record: the pooled vector of its content and the model that made it."""
    return (Column(EMBEDDING, Kind.VECTOR, encoder.dim), Column("model", Kind.TEXT))


def embed_contents(rows: list[dict[str, Any]], encoder: Encoder, store: FileStore, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The pooled vector of each chunk's content, and the encoder's model identifier (`all-MiniLM-L6-v2`)."""
    return [{EMBEDDING: vector, "model": encoder.model_id} for vector in encoder.encode_pooled([row["content"] for row in rows])]


def chunks_of(item: str) -> Filter:
    """A document_id (a UUID) names that document's chunks; anything else is a path inside its folder."""
    try:
        return Comparison("document_id", "==", str(uuid.UUID(item)))
    except ValueError:
        return Comparison("metadata", "==", item, key="path")


def _path(hit) -> str:
    return hit.values.get("metadata", {}).get("path", "")


def _content(width: int):
    def short(hit) -> str:
        text = " ".join(hit.values.get("content", "").split())
        return text if len(text) <= width else text[: width - 1] + "…"
    return short


DOCUMENTS = SourceSpec(
    name="documents", modality="text", group="documents", asset_prefix="documents", partitions=document_folders,
    ingest_assets=(documents,), ingest_job=DOCUMENTS_JOB, sensors=(document_folder_sensor,),
    register_all=lambda instance, resources: register_all_folders(instance, resources["documents_source"]),
    rows_table=DOCUMENT_CHUNKS, derived_assets=(document_chunks,), equal_count_tables=(),
    embeddings_asset="document_chunk_embeddings",
    embeddings_description="Every chunk's record (all its fields copied) with a pooled embedding of its content and the "
                           "model identifier, one table per text encoder: the vector record of the seed schema. A chunk "
                           "whose content (content_hash) is already embedded in its folder keeps that vector, whatever "
                           "else changed; only new text is embedded. "
                           "Says `cached` when the whole folder already has vectors from the same encoder.",
    embeddings_table="document_chunk_embeddings",
    copied_columns=tuple(column.name for column in chunk_columns()),
    embedder=Embedder(columns=record_vector_columns, embed=embed_contents, unit="chunks", batch_size=64),
    embedded_columns=("content_hash",),  # a chunk's vector depends on its content alone
    indexes=((EMBEDDING, "clustered"), ("content", "bm25")),
    search=SearchSpec(
        modes=MODES, run=search_documents, select=RESULT_COLUMNS, probe_mode="vector",
        columns=(RANK, SCORE, HitColumn("path", _path, 28), value_column("chunk_index", "chunk", 5, True),
                 value_column("language", "lang", 4), HitColumn("content", _content(70))),
    ),
    lineage=Lineage(
        item_help="a document path inside its folder (e.g. cats.txt) or a document_id", rows_for=chunks_of,
        origin_table=DOCUMENTS_TABLE, origin_key=lambda row: row["document_id"],
        describe_origin=lambda row: {"folder": row["folder"], "path": row["path"], "title": row["title"],
                                     "file_id": row["file_id"], "sha256": row["sha256"], "bytes": row["bytes"]},
        item_of=lambda hit: hit["document_id"],
    ),
    presence_tables=(DOCUMENTS_TABLE,),
)
