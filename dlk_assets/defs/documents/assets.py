"""Document ingest assets: each file into the file store with one `documents` row, then its chunks as
vector-record rows (embeddings, indexes and the cutover follow from `spec`)."""

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import PurePosixPath

import dagster as dg

from dlk_assets.defs.documents.partitions import document_folders
from dlk_assets.defs.documents.rows import (
    chunk_changes,
    chunk_rows,
    document_row,
    document_uuid,
    utc_timestamp,
)
from dlk_assets.defs.documents.tables import DOCUMENT_CHUNKS, DOCUMENTS_TABLE
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.pipeline.automation import FOLLOW_UPSTREAM
from dlk_assets.defs.pipeline.ingest_safety import (
    IngestConfig,
    replace_listed_partition,
    skipped_metadata,
)
from dlk_assets.defs.pipeline.run_context import dagster_run_id, partition_metadata
from dlk_assets.defs.pipeline.table_metadata import definition_metadata, table_metadata
from dlk_assets.defs.pipeline.versions import rows_version
from dlk_assets.lake.schema import ROW_KEY
from dlk_assets.resources import DocumentSourceResource, FileStoreResource, LakeResource
from dlk_assets.sources.documents import DocumentFolder, read_folder
from dlk_assets.text.extract import extract_text

PREVIEW_ROWS = 50


def _configured_folder(source: DocumentSourceResource, key: str) -> DocumentFolder:
    try:
        return source.folder(key)
    except LookupError as exc:
        raise dg.Failure(description=str(exc), metadata={"partition": key}) from exc


@dg.asset(
    partitions_def=document_folders,
    group_name="documents",
    kinds={"deeplake"},
    code_version="1",
    metadata=definition_metadata(DOCUMENTS_TABLE),
)
def documents(context: dg.AssetExecutionContext, config: IngestConfig, documents_source: DocumentSourceResource,
              lake: LakeResource, files: FileStoreResource) -> dg.MaterializeResult:
    """Every Text, Markdown, HTML and JSON file of the folder in the file store (content-addressed `file_id`
    + sha256), and one `documents` row each: document_id, path in the folder, file_id, sha256, bytes,
    content_type, title, tenant. The lineage origin of every chunk and vector.

    A file that is not UTF-8, does not parse, has no text or is too large is skipped and listed; the
    folder still succeeds. A deleted file's row goes (the folder's truth); a file that is still there
    but now skipped keeps its stored row by failing the run, unless run config sets `allow_shrink`.
    A missing folder fails the run and keeps everything stored. The data version is the rows' content,
    so an unchanged folder marks nothing stale."""
    started = time.perf_counter()
    key, run_id = context.partition_key, dagster_run_id(context)
    folder = _configured_folder(documents_source, key)
    tenant = documents_source.checked_tenant()
    try:
        read = read_folder(folder.path)
    except FileNotFoundError as exc:
        raise dg.Failure(description=f"{key}: {exc}; the stored documents are kept", metadata={"folder": str(folder.path)}) from exc
    store = files.store()
    rows = [document_row(document, folder, store.put(document.data, PurePosixPath(document.path).name, document.content_type),
                         tenant, run_id) for document in read.documents]
    for item in read.skipped:
        context.log.warning(f"{key}: skipped {item.item}: {item.reason}")
    table = lake.lake().table(DOCUMENTS_TABLE)
    before = table.row_keys(key)
    write = replace_listed_partition(table, key, rows, read.skipped, lambda s: document_uuid(tenant, folder.name, s.item),
                                     f"documents {key} run {run_id}", config.allow_shrink)
    removed = before - {row[ROW_KEY] for row in rows}
    context.log.info(f"{key}: {len(rows)} document(s) from {folder.path}, {len(read.skipped)} skipped, {len(removed)} removed")
    return dg.MaterializeResult(metadata={
        **table_metadata(table, len(rows)), "documents": len(rows), "bytes": sum(row["bytes"] for row in rows),
        **skipped_metadata(read.skipped), "documents_removed": len(removed), "rows_replaced": write.rows_replaced,
        "folder": str(folder.path), "tenant_id": tenant, "seconds": round(time.perf_counter() - started, 3),
        "files": dg.MetadataValue.md(markdown_table(("path", "content_type", "bytes", "title"), [
            (row["path"], row["content_type"], row["bytes"], row["title"]) for row in rows[:PREVIEW_ROWS]])),
    }, data_version=rows_version(rows))


@dg.asset(
    partitions_def=document_folders,
    deps=[documents],
    group_name="documents",
    kinds={"deeplake"},
    code_version="1",
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=FOLLOW_UPSTREAM,
    metadata=definition_metadata(DOCUMENT_CHUNKS),
)
def document_chunks(context: dg.AssetExecutionContext, documents_source: DocumentSourceResource, lake: LakeResource,
                    files: FileStoreResource) -> dg.MaterializeResult:
    """Each document's text cut into sentence-aware chunks (`chunk_chars`, `overlap_chars`), one row per chunk
    with the vector record's fields: id and chunk_id (deterministic UUIDs), document_id, content, its sha256,
    content_type, language (py3langid), chunk_index/chunk_count, metadata (tenant_id, folder, path, title),
    tenant_id, created_at/updated_at. Reads the documents back from the file store by `file_id`, so it
    needs only the lake: one run takes a whole partition range. A changed document's chunks are replaced
    and a removed one's go; unchanged chunks keep their timestamps, so an unchanged folder gives identical
    rows and the embeddings asset embeds nothing again."""
    run_id = dagster_run_id(context)
    tables, store = lake.lake(), files.store()
    chunk_chars, overlap_chars = documents_source.chunking()
    now = utc_timestamp(datetime.now(UTC))  # one moment for every chunk this run creates or changes
    sources, table = tables.table(DOCUMENTS_TABLE), tables.table(DOCUMENT_CHUNKS)
    per_partition = {}
    for key in context.partition_keys:
        stored = {row[ROW_KEY]: row for row in table.read_partition(key, ("content_hash", "created_at", "updated_at"))}
        rows, summary = [], []
        for document in sources.read_partition(key):
            text = extract_text(store.get(document["file_id"]), document["content_type"]).text
            chunks = chunk_rows(document, text, chunk_chars, overlap_chars, stored, now, run_id)
            rows += chunks
            summary.append((document["path"], len(chunks), chunks[0]["language"] if chunks else "-", document["title"]))
        table.replace_partition(key, rows, f"document_chunks {key} run {run_id}")
        languages = Counter(row["language"] for row in rows)
        per_partition[key] = {
            "dagster/partition_row_count": len(rows), "rows": len(rows), "documents": len(summary),
            **chunk_changes(stored, rows), "languages": ", ".join(f"{code} {n}" for code, n in languages.most_common()) or "none",
            "chunks_per_document": dg.MetadataValue.md(markdown_table(("path", "chunks", "language", "title"), summary[:PREVIEW_ROWS])),
        }
    return dg.MaterializeResult(metadata={**table_metadata(table), "partitions": len(per_partition), "chunk_chars": chunk_chars,
                                          "overlap_chars": overlap_chars, **partition_metadata(context, per_partition)})
