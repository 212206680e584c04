"""Pure row builders for the document tables (no Dagster, no storage): deterministic ids, a document's
row, and its chunk rows with the vector record's fields.

Ids are UUIDs in version-4 format made from a hash, so the same tenant, folder, path and position
always give the same ids (a re-run writes the same keys). `created_at` of a chunk is kept from the
stored row while its id exists; `updated_at` is kept while its content hash is unchanged.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from dlk_assets.lake.files import StoredFile, sha256_hex
from dlk_assets.lake.schema import DAGSTER_RUN_ID, ROW_KEY
from dlk_assets.sources.documents import DocumentFile, DocumentFolder
from dlk_assets.text.chunking import chunk_text
from dlk_assets.text.language import detect_language
from dlk_assets.vectors.schema import TENANT

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def hashed_uuid(*parts: str) -> str:
    """A version-4-format UUID from the sha256 of `parts` (each part separated, so ("ab", "c") != ("a", "bc"))."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def document_uuid(tenant_id: str, folder: str, path: str) -> str:
    """The id of the document at `path` in `folder` for `tenant_id`."""
    return hashed_uuid("document", tenant_id, folder, path)


def chunk_uuid(document_id: str, chunk_index: int) -> str:
    """The id of a document's chunk at a position (the chunk's identity; its content may change)."""
    return hashed_uuid("chunk", document_id, str(chunk_index))


def record_uuid(chunk_id: str) -> str:
    """The vector record's own id for a chunk (`id`, the row key), distinct from the chunk id."""
    return hashed_uuid("record", chunk_id)


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC as the record schema writes it: `YYYY-MM-DDTHH:MM:SS.ffffffZ` (`moment` is aware, in UTC)."""
    return moment.strftime(TIMESTAMP_FORMAT)


def document_row(document: DocumentFile, folder: DocumentFolder, stored: StoredFile, tenant_id: str,
                 dagster_run_id: str) -> dict[str, Any]:
    """The `documents` row of a file whose bytes are in the file store (row key: the document id)."""
    document_id = document_uuid(tenant_id, folder.name, document.path)
    return {
        ROW_KEY: document_id, "document_id": document_id, "folder": folder.name, "path": document.path,
        "file_id": stored.file_id, "sha256": stored.sha256, "bytes": stored.size, "content_type": document.content_type,
        "title": document.title, TENANT: tenant_id, "source": f"documents:{folder.name}", DAGSTER_RUN_ID: dagster_run_id,
    }


def chunk_metadata(document: dict[str, Any]) -> dict[str, Any]:
    """What a chunk's `metadata` says about its document; `tenant_id` is the one key the record schema requires."""
    return {TENANT: document[TENANT], "folder": document["folder"], "path": document["path"], "title": document["title"]}


def chunk_rows(document: dict[str, Any], text: str, chunk_chars: int, overlap_chars: int, stored: dict[str, dict[str, Any]],
               now: str, dagster_run_id: str) -> list[dict[str, Any]]:
    """The `document_chunks` rows of one document (a `documents` row and its extracted text).

    `stored` holds the rows stored now by row key: a chunk that exists keeps its `created_at`, and one
    whose content hash is unchanged keeps its `updated_at`, so unchanged files give identical rows.
    The language is the document's (py3langid on its whole text; `en` when too short to tell).
    """
    chunks = chunk_text(text, chunk_chars, overlap_chars)
    language = detect_language(text)
    metadata = chunk_metadata(document)
    rows = []
    for index, content in enumerate(chunks):
        chunk_id = chunk_uuid(document["document_id"], index)
        record_id = record_uuid(chunk_id)
        content_hash = sha256_hex(content.encode("utf-8"))
        before = stored.get(record_id)
        rows.append({
            ROW_KEY: record_id, "id": record_id, "document_id": document["document_id"], "chunk_id": chunk_id,
            "content": content, "content_hash": content_hash, "content_type": document["content_type"],
            "language": language, "chunk_index": index, "chunk_count": len(chunks), "metadata": dict(metadata),
            "created_at": before["created_at"] if before else now,
            "updated_at": before["updated_at"] if before and before["content_hash"] == content_hash else now,
            TENANT: document[TENANT], "source": document["source"], DAGSTER_RUN_ID: dagster_run_id,
        })
    return rows


def chunk_changes(stored: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, int]:
    """How a partition's new chunk rows differ from the stored ones: new, changed (content), unchanged, removed."""
    keys = {row[ROW_KEY] for row in rows}
    changed = sum(row[ROW_KEY] in stored and stored[row[ROW_KEY]]["content_hash"] != row["content_hash"] for row in rows)
    new = sum(row[ROW_KEY] not in stored for row in rows)
    return {"chunks_new": new, "chunks_changed": changed, "chunks_unchanged": len(rows) - new - changed,
            "chunks_removed": len(set(stored) - keys)}
