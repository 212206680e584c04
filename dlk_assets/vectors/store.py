"""The vector-record layer: datasets of seed records in the lake, batch writes, gets, deletes and
tenant-scoped search. The HTTP service is a thin shell around this; so is anything else that wants
vector records (a script, a test, an agent).

Layout (the seed's `{storage_location}/{tenant_id}/{dataset_name}/`): every tenant has its own
namespace of datasets, so one tenant cannot see, fill or delete another's, nor learn its names. The
dataset `name` of tenant `t` is the table `vectors__<hash of t>__<name>`; a record's row key is
`<tenant>/<id>` and its partition the tenant. Reads never rely on that layout alone: each is also
filtered by the `tenant_id` column, which is how a read-only dataset served from a source's table
(documents), shared by every tenant, is scoped.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import numpy as np

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.lake.validation import RowValidationError
from dlk_assets.retrieval.filters import Comparison
from dlk_assets.retrieval.keywords import keyword_text
from dlk_assets.retrieval.requests import Hit, KeywordSearch, VectorSearch
from dlk_assets.retrieval.text_modes import fusion_depth, rescore_union
from dlk_assets.vectors.errors import (
    VectorServiceError,
    dataset_not_found,
    duplicate_vector,
    vector_not_found,
)
from dlk_assets.vectors.known_models import WrongModelSize, check_model
from dlk_assets.vectors.metadata_filters import compile_metadata_filter, scoped
from dlk_assets.vectors.records import (
    DatasetCreate,
    DatasetInfo,
    RecordError,
    SearchRequest,
    SearchResponse,
    SearchResult,
    VectorBatchInsert,
    VectorBatchResponse,
    VectorResponse,
)
from dlk_assets.vectors.schema import EMBEDDING, TENANT, record_schema
from dlk_assets.vectors.validation import (
    ABSENT_INT,
    check_values,
    now_iso,
    parse_record,
    record_row,
)

DATASETS = TableSchema("vector_datasets_by_tenant", (
    Column("tenant", Kind.TEXT), Column("name", Kind.TEXT), Column("dimensions", Kind.INT), Column("model", Kind.TEXT),
    Column("created_at", Kind.TEXT)))
TABLE_PREFIX = "vectors__"
SEARCH_MODES = ("vector", "bm25", "hybrid")
# 40 characters keep the table name (prefix, 12-character tenant hash, name) within PostgreSQL's 63 bytes.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_LISTED = ("id", "document_id", "chunk_id", "content_type", "language", "chunk_index", "chunk_count", "model")
# Attached datasets: a name served from a table something else writes (a source's), read-only here.
Attached = Callable[[], tuple[DatasetInfo, Table]]


def _optional_text(value: str) -> str | None:
    return value or None


def _optional_int(value: int) -> int | None:
    return None if value == ABSENT_INT else int(value)


def _key(tenant: str, vector_id: str) -> str:
    return f"{tenant}/{vector_id}"


def dataset_table(tenant: str, name: str) -> str:
    """The table holding tenant `tenant`'s dataset `name` (a fixed-length hash keeps any tenant id a safe name)."""
    return f"{TABLE_PREFIX}{hashlib.sha256(tenant.encode()).hexdigest()[:12]}__{name}"


def _record_error(index: int, raw: Any, error: VectorServiceError) -> RecordError:
    vector_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    return RecordError(index=index, id=vector_id, error_code=error.error_code, message=error.message, details=error.details)


@dataclass
class VectorStore:
    """Datasets of vector records in `lake`. `attached` adds read-only datasets served from other tables;
    `encoder_for(model)` gives the warm encoder that embeds `query_text` for a model, or None."""

    lake: Lake
    attached: dict[str, Attached] = field(default_factory=dict)
    encoder_for: Callable[[str], Encoder | None] = lambda model: None
    _tables: dict[str, tuple[DatasetInfo, Table]] = field(default_factory=dict, init=False, repr=False)
    _lock: Lock = field(default_factory=Lock, init=False, repr=False)

    # --- datasets ------------------------------------------------------------------------------

    def create_dataset(self, request: DatasetCreate, tenant: str) -> DatasetInfo:
        """Create an empty dataset of the tenant's (table, BM25 index on content); `DATASET_ALREADY_EXISTS`
        when the tenant has one of that name."""
        name = request.name
        if not _NAME.fullmatch(name):
            raise VectorServiceError("VALIDATION_ERROR", "name must be 1-40 lower-case letters, digits, _ or -, starting "
                                     f"with a letter or digit, got {name[:60]!r}", {"field": "name"})
        try:
            check_model(request.model, request.dimensions)
        except WrongModelSize as exc:
            raise VectorServiceError("VALIDATION_ERROR", str(exc), {"field": "dimensions", "model": request.model}) from None
        except ValueError as exc:
            raise VectorServiceError("UNKNOWN_MODEL", str(exc), {"field": "model", "model": request.model}) from None
        info = DatasetInfo(name=name, dimensions=request.dimensions, model=request.model, created_at=now_iso(),
                           table=dataset_table(tenant, name))
        exists = VectorServiceError("DATASET_ALREADY_EXISTS", f"Dataset {name!r} already exists", {"dataset_id": name})
        if name in self.attached:
            raise exists
        try:  # the catalog row claims the name: a second creator clashes on its key under the table's lock
            self.lake.table(DATASETS).append(tenant, [{
                "row_key": _key(tenant, name), "tenant": tenant, "name": name, "dimensions": info.dimensions,
                "model": info.model, "created_at": info.created_at}], f"create vector dataset {name} of {tenant}")
        except RowValidationError:
            raise exists from None
        self._open(tenant, info)
        return info

    def datasets(self, tenant: str) -> list[DatasetInfo]:
        """The tenant's datasets and the attached ones (shared, their records scoped to each tenant)."""
        listed = [self._info(row) for row in self._catalog_rows(tenant, None)]
        for attached in self.attached.values():
            try:
                listed.append(attached()[0])
            except VectorServiceError:  # its source has nothing to serve yet
                continue
        return sorted(listed, key=lambda info: info.name)

    def describe(self, name: str, tenant: str) -> DatasetInfo:
        """The dataset's description with its current search path (an exact scan standing in while an
        inverted file is built says so), without waiting for anything being built. For an attached
        dataset shared by every tenant the path's sizes are left out: they would count other tenants' rows."""
        info, table = self.dataset(name, tenant)
        if info.read_only:
            return info
        return info.model_copy(update={"search_path": table.describe_search(EMBEDDING, wait=False)})

    def dataset(self, name: str, tenant: str) -> tuple[DatasetInfo, Table]:
        """The tenant's dataset (or an attached one) and its table; `DATASET_NOT_FOUND` when there is none."""
        if name in self.attached:
            return self.attached[name]()
        with self._lock:
            cached = self._tables.get((tenant, name))
        if cached and self.lake.exists(cached[0].table):
            return cached
        if cached:  # dropped by another process: its catalog row tells whether it is gone for good
            with self._lock:
                self._tables.pop((tenant, name), None)
        rows = self._catalog_rows(tenant, name) if _NAME.fullmatch(name) else []
        if not rows:
            raise dataset_not_found(name)
        return self._open(tenant, self._info(rows[0]))

    def _catalog_rows(self, tenant: str, name: str | None) -> list[dict[str, Any]]:
        if not self.lake.exists(DATASETS.name):
            return []
        if name is not None:
            return list(self.lake.table(DATASETS).read_rows([_key(tenant, name)], DATASETS.column_names).values())
        return self.lake.table(DATASETS).read_where(Comparison("tenant", "==", tenant))

    @staticmethod
    def _info(row: dict[str, Any]) -> DatasetInfo:
        return DatasetInfo(name=row["name"], dimensions=row["dimensions"], model=row["model"],
                           created_at=row["created_at"], table=dataset_table(row["tenant"], row["name"]))

    def _open(self, tenant: str, info: DatasetInfo) -> tuple[DatasetInfo, Table]:
        table = self.lake.table(record_schema(info.table, info.dimensions))
        if table.indexes().get("content") != "bm25":
            table.create_index("content", "bm25")
        with self._lock:
            self._tables[(tenant, info.name)] = (info, table)
        return info, table

    def _writable(self, name: str, tenant: str) -> tuple[DatasetInfo, Table]:
        info, table = self.dataset(name, tenant)
        if info.read_only:
            raise VectorServiceError("READ_ONLY_DATASET", f"dataset {name!r} is written by its pipeline, not the API",
                                     {"dataset_id": name})
        return info, table

    def delete_dataset(self, name: str, tenant: str) -> int:
        """Delete one of the tenant's datasets whole, records and all (the seed's migration cleanup);
        how many records went with it."""
        _, table = self._writable(name, tenant)
        table.refresh()  # count what is stored now, other writers' records included
        removed = len(table)
        with self._lock:
            self._tables.pop((tenant, name), None)
        # The table goes first: a crash in between leaves a listed dataset with no records (opening it
        # makes an empty table, and deleting it again finishes the job), never records that come back.
        self.lake.drop(table.schema.name)
        self.lake.table(DATASETS).delete_rows(tenant, [_key(tenant, name)], f"drop vector dataset {name} of {tenant}")
        return removed

    # --- writes ----------------------------------------------------------------------------------

    def insert_batch(self, name: str, tenant: str, batch: VectorBatchInsert) -> VectorBatchResponse:
        """Validate every record on its own, then store the valid ones (in commits of `batch_size`).

        Existing ids are DUPLICATE_VECTOR failures, or skipped with `skip_existing`, or replaced with
        `overwrite` (keeping their `created_at`). A bad record never blocks the good ones."""
        started = time.perf_counter()
        if batch.skip_existing and batch.overwrite:
            raise VectorServiceError("VALIDATION_ERROR", "skip_existing and overwrite exclude each other; set one",
                                     {"field": "overwrite"})
        info, table = self._writable(name, tenant)
        timestamp, errors, rows, seen = now_iso(), [], [], set()
        for index, raw in enumerate(batch.vectors):
            try:
                row = record_row(parse_record(raw), info, tenant, timestamp)
                if row["id"] in seen:
                    raise duplicate_vector(row["id"])
                seen.add(row["id"])
                rows.append((index, {"row_key": _key(tenant, row["id"]), **row}))
            except VectorServiceError as error:
                errors.append(_record_error(index, raw, error))
        inserted = skipped = 0
        size = batch.batch_size or len(rows) or 1
        for start in range(0, len(rows), size):
            done, passed, failed = self._write(table, tenant, rows[start:start + size], batch)
            inserted, skipped = inserted + done, skipped + passed
            errors.extend(failed)
        errors.sort(key=lambda error: error.index)
        return VectorBatchResponse(inserted_count=inserted, skipped_count=skipped, failed_count=len(errors),
                                   error_messages=[f"vectors[{e.index}]: {e.error_code}: {e.message}" for e in errors],
                                   processing_time_ms=round((time.perf_counter() - started) * 1000, 3), errors=errors)

    def _write(self, table: Table, tenant: str, rows: list[tuple[int, dict[str, Any]]],
               batch: VectorBatchInsert) -> tuple[int, int, list[RecordError]]:
        """(written, skipped, failures) for one commit's rows."""
        keys = [row["row_key"] for _, row in rows]
        if batch.overwrite:
            stored = table.read_rows(keys, ("created_at",))
            for _, row in rows:
                if row["row_key"] in stored:
                    row["created_at"] = stored[row["row_key"]]["created_at"]
            table.upsert(tenant, [row for _, row in rows], f"upsert {len(rows)} vector(s) for {tenant}")
            return len(rows), 0, []
        if batch.skip_existing:
            write = table.append(tenant, [row for _, row in rows], f"insert vectors for {tenant}", skip_existing=True)
            return write.rows_written, write.rows_already_present, []
        def split() -> tuple[list[dict[str, Any]], list[RecordError]]:
            stored = set(table.partitions_of(keys))  # the keys are per tenant, so any partition holding one is this tenant's
            failures = [RecordError(index=i, id=row["id"], error_code=e.error_code, message=e.message, details=e.details)
                        for i, row in rows if row["row_key"] in stored for e in [duplicate_vector(row["id"])]]
            return [row for _, row in rows if row["row_key"] not in stored], failures

        fresh, failures = split()
        try:
            if fresh:
                table.append(tenant, fresh, f"insert {len(fresh)} vector(s) for {tenant}")
        except RowValidationError:  # a concurrent writer took one of these ids between our read and our lock
            fresh, failures = split()
            if fresh:
                table.append(tenant, fresh, f"insert {len(fresh)} vector(s) for {tenant}")
        return len(fresh), 0, failures

    def delete(self, name: str, tenant: str, vector_id: str) -> None:
        """Delete one of the tenant's vectors; `VECTOR_NOT_FOUND` when the tenant has none with that id."""
        info, table = self._writable(name, tenant)
        row = self._find(info, table, tenant, vector_id, ("row_key", "partition"))
        if not table.delete_rows(row["partition"], [row["row_key"]], f"delete vector {vector_id} of {tenant}"):
            raise vector_not_found(vector_id, name)  # deleted by someone else a moment ago

    # --- reads -----------------------------------------------------------------------------------

    def _find(self, info: DatasetInfo, table: Table, tenant: str, vector_id: str, columns: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(vector_id, str) or not 0 < len(vector_id) <= 256 or "\x00" in vector_id:
            raise vector_not_found(str(vector_id)[:256], info.name)
        # One lookup in the table's key index. A record's row key is its tenant and id here; a source's
        # records (an attached dataset) are keyed by id alone. Either way the row's tenant must match.
        key = vector_id if info.read_only else _key(tenant, vector_id)
        row = table.read_rows([key], tuple(dict.fromkeys((*columns, TENANT)))).get(key)
        if row is None or row[TENANT] != tenant:
            raise vector_not_found(vector_id, info.name)
        return row

    def get(self, name: str, tenant: str, vector_id: str) -> VectorResponse:
        """One of the tenant's vectors; another tenant's id answers `VECTOR_NOT_FOUND` as if it did not exist."""
        info, table = self.dataset(name, tenant)
        columns = ("id", "document_id", "chunk_id", EMBEDDING, "content", "content_hash", "metadata", "content_type",
                   "language", "chunk_index", "chunk_count", "model", "created_at", "updated_at", TENANT)
        row = self._find(info, table, tenant, vector_id, columns)
        return VectorResponse(
            id=row["id"], dataset_id=name, document_id=row["document_id"], chunk_id=_optional_text(row["chunk_id"]),
            values=np.asarray(row[EMBEDDING], dtype=np.float32).tolist(), content=_optional_text(row["content"]),
            content_hash=_optional_text(row["content_hash"]), metadata=row["metadata"],
            content_type=_optional_text(row["content_type"]), language=_optional_text(row["language"]),
            chunk_index=_optional_int(row["chunk_index"]), chunk_count=_optional_int(row["chunk_count"]),
            model=_optional_text(row["model"]), dimensions=info.dimensions, created_at=row["created_at"],
            updated_at=row["updated_at"], tenant_id=row[TENANT])

    def search(self, name: str, tenant: str, request: SearchRequest) -> SearchResponse:
        """Top-k of the tenant's records by vector (cosine), BM25 on content, or both: the legs' union
        re-scored by cosine plus the identifier bonus (`text_modes.rescore_union`)."""
        started = time.perf_counter()
        info, table = self.dataset(name, tenant)
        options = request.options
        if options.mode not in SEARCH_MODES:
            raise VectorServiceError("VALIDATION_ERROR", f"options.mode must be one of {', '.join(SEARCH_MODES)}",
                                     {"field": "options.mode"})
        where = scoped(tenant, compile_metadata_filter(options.filters))
        select = (*_LISTED, TENANT, *(("content",) if options.include_content else ()),
                  *(("metadata",) if options.include_metadata else ()), *((EMBEDDING,) if options.include_values else ()))
        k = options.top_k
        if options.mode == "vector":
            hits = table.search(VectorSearch(EMBEDDING, self._query_vector(info, request), "vector", k, where, select))
        elif options.mode == "bm25":
            hits = table.keyword_search(KeywordSearch("content", keyword_text(self._text(request)), k, select, where))
        else:  # the fusion agent memory measured best (`retrieval/fusion.py`): the legs' union re-scored exactly
            text, depth = self._text(request), fusion_depth(k)
            vector = self._query_vector(info, request)
            with_text = tuple(dict.fromkeys((*select, "content")))
            semantic = table.search(VectorSearch(EMBEDDING, vector, "vector", depth, where, with_text))
            keyword = table.keyword_search(KeywordSearch("content", keyword_text(text), depth,
                                                         tuple(dict.fromkeys((*with_text, EMBEDDING))), where))
            hits = rescore_union(semantic, keyword, vector, text, k, text_column="content", select=select)
        # The filter already scopes the engine; checking each hit again costs nothing and keeps another
        # tenant's row out even if an engine bug let one through (DESIGN.md: filtered search after deletes).
        results = [self._result(hit, options.include_values) for hit in hits if hit.values[TENANT] == tenant]
        path = None if options.mode == "bm25" or info.read_only else table.describe_search(EMBEDDING, wait=False)
        return SearchResponse(dataset_id=name, mode=options.mode, results=results, total_results=len(results),
                              query_time_ms=round((time.perf_counter() - started) * 1000, 3), search_path=path)

    @staticmethod
    def _text(request: SearchRequest) -> str:
        if not request.query_text or not request.query_text.strip():
            raise VectorServiceError("VALIDATION_ERROR", "bm25 and hybrid search need query_text", {"field": "query_text"})
        return request.query_text

    def _query_vector(self, info: DatasetInfo, request: SearchRequest) -> np.ndarray:
        """`query_vector` checked against the dataset, or `query_text` embedded by the dataset's model."""
        if request.query_vector is not None:
            return check_values(request.query_vector, info.dimensions, info.name, "query_vector")
        if request.query_text is not None and request.query_text.strip():
            encoder = info._query_encoder or self.encoder_for(info.model)
            if encoder is None:
                raise VectorServiceError("QUERY_TEXT_NOT_SUPPORTED", f"this service cannot run {info.model}; send "
                                         "query_vector instead", {"model": info.model, "dataset_id": info.name})
            return encoder.encode_pooled([request.query_text])[0]
        raise VectorServiceError("VALIDATION_ERROR", "send query_vector or query_text", {"field": "query_vector"})

    @staticmethod
    def _result(hit: Hit, include_values: bool) -> SearchResult:
        values = hit.values
        return SearchResult(
            rank=hit.rank, score=hit.score, id=values["id"], document_id=values["document_id"],
            chunk_id=_optional_text(values["chunk_id"]), content=values.get("content"), metadata=values.get("metadata"),
            content_type=_optional_text(values["content_type"]), language=_optional_text(values["language"]),
            chunk_index=_optional_int(values["chunk_index"]), chunk_count=_optional_int(values["chunk_count"]),
            model=_optional_text(values["model"]),
            values=np.asarray(values[EMBEDDING], dtype=np.float32).tolist() if include_values else None)
