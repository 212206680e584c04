"""Tables in Deep Lake PG (pg_deeplake): PostgreSQL tables `USING deeplake` in one schema (the
workspace) of one database, reached through one psycopg 3 connection pool.

Every statement comes from `dlk_assets.lake.pg_sql`, values bound as parameters; the pool's cursors
bind them client-side (`psycopg.ClientCursor`, see that module's docstring for why pg_deeplake wants it).

- Writes (replace, append, index, tag, table creation, drop) each run in one transaction that starts
  with `pg_advisory_xact_lock` on a key from the table's qualified name: a writer lock every client of
  the server shares, on any machine. Clash, shrink and skip checks read inside that transaction, so
  no other writer changes the table between a check and the write it guards; a failure anywhere
  rolls all of it back.
- Versions and tags: pg_deeplake exposes no dataset version over SQL, so ordinary (heap) tables
  beside the lake's tables (`pg_sql.BOOKKEEPING`) record them, changed in the same transaction as the
  data. A version changes when rows or columns change, not when an index is built. A tag copies the
  table into a snapshot table (`<table>__tag__<hash>`), which `open_tag` reads.
- Visibility: pg_deeplake can show committed rows to SELECTs a few seconds late, so a write returns
  only once a cheap probe (the partition's row count and a few of the written keys) sees it, or
  raises `RowsNotVisibleError` after `visibility_timeout_s`. The probe checks counts and keys, not
  values: a replace that writes the same keys it replaces is confirmed by the count alone. The lock
  ends at commit, before the probe, so a writer that takes it inside that window may check against
  the state before; the row key is the table's PRIMARY KEY, which still refuses a duplicate key.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import quote

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from dlk_assets.lake import pg_sql
from dlk_assets.lake.locks import TableLockTimeout, lock_timeout_s
from dlk_assets.lake.pg_sql import PgTable, Statement
from dlk_assets.lake.schema import PARTITION, ROW_KEY, Column, Kind, TableSchema
from dlk_assets.lake.tables import (
    INDEX_KINDS,
    Lake,
    PartitionShrinkError,
    PartitionWrite,
    Table,
    check_index_kind,
)
from dlk_assets.lake.validation import RowValidationError, validate_rows
from dlk_assets.retrieval.filters import Filter
from dlk_assets.retrieval.requests import MAX_K, Hit, KeywordSearch, VectorSearch

# The project's index kinds are pg_deeplake's index types of the same names.
VECTOR_OVERFETCH, MIN_VECTOR_CANDIDATES = 10, 100  # candidates the index hands to the exact re-rank
KEYS_PER_STATEMENT = 10_000  # row keys bound in one IN (…) list, well under pg_sql.MAX_PARAMS
VISIBILITY_SAMPLE = 8  # written keys the visibility probe looks up, spread over the write
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class RowsNotVisibleError(RuntimeError):
    """A committed write that SELECTs did not show within `visibility_timeout_s`. The write itself is
    committed (and idempotent to repeat); what failed is seeing it."""


def pg_conninfo(host: str, port: int | str, user: str, password: str, database: str, sslmode: str = "require") -> str:
    """A libpq connection string for a Deep Lake PG server (TLS required unless `sslmode` says otherwise)."""
    return make_conninfo(host=host, port=str(port), user=user, password=password, dbname=database, sslmode=sslmode)


def _execute(cursor: psycopg.Cursor, statement: Statement) -> psycopg.Cursor:
    cursor.execute(statement.sql, statement.params)
    return cursor


def _all(cursor: psycopg.Cursor, statement: Statement) -> list[tuple[Any, ...]]:
    return _execute(cursor, statement).fetchall()


def _scalar(cursor: psycopg.Cursor, statement: Statement) -> Any:
    row = _execute(cursor, statement).fetchone()
    return None if row is None else row[0]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _spread(keys: Sequence[str], count: int) -> list[str]:
    """Up to `count` of `keys`, first and last included, evenly spaced."""
    if len(keys) <= count:
        return list(keys)
    return [keys[i] for i in sorted(set(np.linspace(0, len(keys) - 1, count).round().astype(int).tolist()))]


def _error_text(exc: BaseException) -> str:
    """The server's message without the statement text (a ClientCursor error quotes the whole SQL)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        detail = getattr(diag, "message_detail", None)
        return f"{primary} ({detail})" if detail else primary
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _to_python(column: Column, value: Any) -> Any:
    """A stored value as the local backend returns it (`deeplake_local._to_python`).

    A NULL (a row stored before its column was added) reads as the kind's empty value, or None for a vector.
    """
    kind = column.kind
    if kind is Kind.TEXT:
        return "" if value is None else value
    if kind is Kind.INT:
        return 0 if value is None else int(value)
    if kind is Kind.FLOAT:
        return 0.0 if value is None else float(np.float32(value))  # REAL is float32, as the local backend reads it
    if kind is Kind.JSON:
        return {} if value is None else value
    if kind is Kind.INT_LIST:
        return [int(v) for v in value or ()]
    if kind is Kind.BOXES:
        return np.asarray(value or [], dtype=np.float32).reshape(-1, 4).tolist()
    return None if value is None else np.asarray(value, dtype=np.float32)


class DeepLakePgTable(Table):
    """One table of a `DeepLakePg` lake, or (from `open_tag`) a read-only view of one of its snapshots."""

    def __init__(self, schema: TableSchema, lake: DeepLakePg, *, relation: str | None = None, tag: str | None = None,
                 tagged_version: str | None = None):
        super().__init__(schema)
        self._lake = lake
        self._pg = PgTable(schema, lake.workspace, name=relation)
        self._tag = tag
        self._tagged_version = tagged_version
        self._read_only = tag is not None
        self._ranking_indexes: set[str] = set()  # columns known to carry a ranking index

    @property
    def _name(self) -> str:
        return self.schema.name

    def _writable(self) -> None:
        if self._read_only:
            raise PermissionError(f"table {self._name!r} is opened read-only (a pinned tag)")

    def _locked(self):
        """One transaction holding the table's writer lock (a snapshot shares its table's lock)."""
        self._writable()
        return self._lake._locked(self._pg)

    # --- writes ------------------------------------------------------------------------------------

    def _check_storable(self, partition: str, rows: list[dict[str, Any]]) -> None:
        """Refuse, naming the row, values the local backend takes but PostgreSQL cannot store."""
        if "\x00" in partition:
            raise RowValidationError(f"table {self._name!r}: partition {partition!r} contains a NUL character, "
                                     "which PostgreSQL text cannot hold")
        texts = [c.name for c in self.schema.all_columns if c.kind is Kind.TEXT and c.name != PARTITION]
        floats = [c.name for c in self.schema.columns if c.kind is Kind.FLOAT]
        for row in rows:
            for name in texts:
                if "\x00" in row[name]:
                    raise RowValidationError(f"table {self._name!r}, partition {partition!r}, row {row[ROW_KEY]!r}, "
                                             f"column {name!r}: text contains a NUL character, which PostgreSQL "
                                             "cannot store")
            for name in floats:
                if abs(float(row[name])) > _FLOAT32_MAX:
                    raise RowValidationError(f"table {self._name!r}, partition {partition!r}, row {row[ROW_KEY]!r}, "
                                             f"column {name!r}: {row[name]!r} does not fit a 32-bit float column")

    def _validated(self, partition: str, rows: list[dict[str, Any]]) -> list[str]:
        """Check every row before the transaction starts; the row keys in order."""
        validate_rows(self.schema, rows, partition)
        self._check_storable(partition, rows)
        return [row[ROW_KEY] for row in rows]

    def _insert(self, cursor: psycopg.Cursor, partition: str, rows: list[dict[str, Any]]) -> None:
        for chunk in _chunks(rows, pg_sql.ROWS_PER_INSERT):
            try:
                for statement in pg_sql.insert_rows(self._pg, partition, list(chunk)):
                    _execute(cursor, statement)
            except (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError) as exc:
                first, last = chunk[0][ROW_KEY], chunk[-1][ROW_KEY]
                which = f"row {first!r}" if len(chunk) == 1 else f"one of rows {first!r} … {last!r}"
                raise RowValidationError(f"table {self._name!r}, partition {partition!r}: PostgreSQL refused {which}: "
                                         f"{_error_text(exc)}; the write was rolled back") from exc

    def _holders(self, cursor: psycopg.Cursor, keys: Sequence[str]) -> list[tuple[str, str]]:
        """(key, partition) of each of `keys` the table holds, in key order per chunk."""
        found: list[tuple[str, str]] = []
        for chunk in _chunks(list(dict.fromkeys(keys)), KEYS_PER_STATEMENT):
            found.extend((str(k), str(p)) for k, p in _all(cursor, pg_sql.select_rows(self._pg, chunk, (PARTITION,))))
        return found

    def _check_no_clashes(self, cursor: psycopg.Cursor, keys: list[str], partition: str, same_partition_ok: bool) -> None:
        for key, other in self._holders(cursor, keys):
            if same_partition_ok and other == partition:
                continue
            where = f"partition {other!r}" if other != partition else f"this partition ({partition!r}); append only adds new keys"
            raise RowValidationError(f"table {self._name!r}: row {key!r} already belongs to {where}")

    def _count(self, cursor: psycopg.Cursor, partition: str | None = None, table: PgTable | None = None) -> int:
        return int(_scalar(cursor, pg_sql.count_rows(table or self._pg, partition)))

    def _version(self, cursor: psycopg.Cursor) -> str:
        if self._read_only:
            return str(self._tagged_version)
        value = _scalar(cursor, pg_sql.table_version(self._lake.workspace, self._name))
        return "0" if value is None else str(value)  # "0": a table no dlk writer has changed yet

    def _bump(self, cursor: psycopg.Cursor, message: str) -> str:
        return str(_scalar(cursor, pg_sql.bump_version(self._lake.workspace, self._name, message.replace("\x00", ""))))

    def replace_partition(self, partition: str, rows: list[dict[str, Any]], message: str,
                          shrink_allowed: bool = True) -> PartitionWrite:
        self._writable()
        keys = self._validated(partition, rows)
        with self._locked() as cursor:
            self._check_no_clashes(cursor, keys, partition, same_partition_ok=True)
            stored = self._count(cursor, partition)
            if not shrink_allowed and len(rows) < stored:
                raise PartitionShrinkError(self._name, partition, stored, len(rows))
            if not stored and not rows:  # nothing to change, so no new version
                return PartitionWrite(self._name, partition, 0, 0, self._version(cursor))
            replaced = _execute(cursor, pg_sql.delete_partition(self._pg, partition)).rowcount
            self._insert(cursor, partition, rows)
            version = self._bump(cursor, message)
        self._await_visible(partition, len(rows), keys, version)
        return PartitionWrite(self._name, partition, len(rows), replaced, version)

    def append(self, partition: str, rows: list[dict[str, Any]], message: str, skip_existing: bool = False) -> PartitionWrite:
        self._writable()
        keys = self._validated(partition, rows)
        with self._locked() as cursor:
            present = ({key for key, holder in self._holders(cursor, keys) if holder == partition}
                       if skip_existing and rows else set())
            kept = [row for row in rows if row[ROW_KEY] not in present]
            if not kept:
                return PartitionWrite(self._name, partition, 0, 0, self._version(cursor), len(present))
            kept_keys = [row[ROW_KEY] for row in kept]
            self._check_no_clashes(cursor, kept_keys, partition, same_partition_ok=False)
            before = self._count(cursor, partition)
            self._insert(cursor, partition, kept)
            version = self._bump(cursor, message)
        self._await_visible(partition, before + len(kept), kept_keys, version)
        return PartitionWrite(self._name, partition, len(kept), 0, version, len(present))

    def _delete_keys(self, cursor: psycopg.Cursor, partition: str, keys: Sequence[str]) -> int:
        return sum(_execute(cursor, pg_sql.delete_rows(self._pg, partition, chunk)).rowcount
                   for chunk in _chunks(list(dict.fromkeys(keys)), KEYS_PER_STATEMENT))

    def upsert(self, partition: str, rows: list[dict[str, Any]], message: str) -> PartitionWrite:
        self._writable()
        keys = self._validated(partition, rows)
        if not rows:
            return PartitionWrite(self._name, partition, 0, 0, self.version)
        with self._locked() as cursor:
            self._check_no_clashes(cursor, keys, partition, same_partition_ok=True)
            before = self._count(cursor, partition)
            replaced = self._delete_keys(cursor, partition, keys)
            self._insert(cursor, partition, rows)
            version = self._bump(cursor, message)
        self._await_visible(partition, before - replaced + len(rows), keys, version)
        return PartitionWrite(self._name, partition, len(rows), replaced, version)

    def delete_rows(self, partition: str, row_keys: list[str], message: str) -> int:
        self._writable()
        if not row_keys:
            return 0
        with self._locked() as cursor:
            before = self._count(cursor, partition)
            deleted = self._delete_keys(cursor, partition, row_keys)
            if not deleted:
                return 0
            version = self._bump(cursor, message)
        self._await_visible(partition, before - deleted, [], version)
        return deleted

    def _await_visible(self, partition: str | None, expected: int, keys: Sequence[str], version: str | None,
                       table: PgTable | None = None) -> None:
        """Return once SELECTs show `expected` rows (in `partition`, or the whole table) and a sample of
        `keys` in it; stop early when a later write has changed the table's version."""
        table = table or self._pg
        sample = _spread(keys, VISIBILITY_SAMPLE)
        timeout = self._lake.visibility_timeout_s
        deadline, delay = time.monotonic() + timeout, 0.02
        while True:
            with self._lake._cursor() as cursor:
                count = self._count(cursor, partition, table)
                if count == expected and self._sample_visible(cursor, table, sample, partition):
                    return
                if version is not None and self._version(cursor) != version:
                    return  # superseded: that writer waits for its own rows
            if time.monotonic() >= deadline:
                where = f"partition {partition!r}" if partition is not None else "the snapshot"
                raise RowsNotVisibleError(
                    f"table {table.table_name!r}, {where}: the write is committed ({expected} row(s)"
                    f"{f', version {version}' if version else ''}) but after {timeout:g} s SELECTs show {count}; "
                    "Deep Lake PG has not made it visible yet (raise visibility_timeout_s, or check the server)")
            time.sleep(delay)
            delay = min(2 * delay, 0.5)

    def _sample_visible(self, cursor: psycopg.Cursor, table: PgTable, sample: list[str], partition: str | None) -> bool:
        if not sample:
            return True
        found = dict(_all(cursor, pg_sql.select_rows(table, sample, (PARTITION,))))
        return len(found) == len(sample) and (partition is None or set(found.values()) == {partition})

    # --- reads -------------------------------------------------------------------------------------

    def _specs(self, columns: Sequence[str]) -> list[Column]:
        # The order pg_sql selects in: the row key first, then the columns asked for (all when none).
        return [self.schema.column(n) for n in dict.fromkeys((ROW_KEY, *(columns or self.schema.column_names)))]

    def _rows(self, statement: Statement, columns: Sequence[str]) -> list[dict[str, Any]]:
        specs = self._specs(columns)
        with self._lake._cursor() as cursor:
            records = _all(cursor, statement)
        return [{c.name: _to_python(c, v) for c, v in zip(specs, record)} for record in records]

    def partitions_of(self, row_keys: list[str]) -> dict[str, str]:
        if not row_keys:
            return {}
        with self._lake._cursor() as cursor:
            return dict(self._holders(cursor, row_keys))

    def row_keys(self, partition: str) -> set[str]:
        with self._lake._cursor() as cursor:
            return {str(r[0]) for r in _all(cursor, pg_sql.select_partition(self._pg, partition, (ROW_KEY,)))}

    def read_partition(self, partition: str, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self._rows(pg_sql.select_partition(self._pg, partition, columns), columns)

    def read_where(self, where: Filter | None, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self._rows(pg_sql.select_where(self._pg, where, columns), columns)

    def read_rows(self, row_keys: list[str], columns: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(row_keys)), KEYS_PER_STATEMENT):
            found.update((row[ROW_KEY], row) for row in self._rows(pg_sql.select_rows(self._pg, chunk, columns), columns))
        return found

    def partition_counts(self) -> dict[str, int]:
        with self._lake._cursor() as cursor:
            return {str(p): int(n) for p, n in _all(cursor, pg_sql.partition_counts(self._pg))}

    # --- search ------------------------------------------------------------------------------------

    def _hits(self, statement: Statement, select: tuple[str, ...], scored: bool) -> list[Hit]:
        specs = [self.schema.column(n) for n in select if n != ROW_KEY]
        with self._lake._cursor() as cursor:
            records = _all(cursor, statement)
        return [Hit(rank=rank, row_key=str(record[0]), score=float(record[-1]) if scored else None,
                    values={c.name: _to_python(c, v) for c, v in zip(specs, record[1:])})
                for rank, record in enumerate(records, start=1)]

    def search(self, search: VectorSearch) -> list[Hit]:
        """pg_deeplake's index ranks; a cosine search over-fetches `VECTOR_OVERFETCH` x k candidates
        from it with their vectors and re-ranks them exactly here, since an index built up over many
        commits misses part of the true top-k (PERF.md: Deep Lake's clustered index, recall 0.73 at 100k)."""
        indexed = self._ranks_by_index(search.column)
        if search.mode != "vector":
            return self._hits(pg_sql.vector_search(self._pg, search, indexed), search.select, search.with_scores)
        fetch = min(max(search.k * VECTOR_OVERFETCH, MIN_VECTOR_CANDIDATES), MAX_K)
        select = tuple(dict.fromkeys((*search.select, search.column)))
        wide = dataclasses.replace(search, k=fetch, select=select, with_scores=False)
        candidates = self._hits(pg_sql.vector_search(self._pg, wide, indexed), select, False)
        if not candidates:
            return []
        query = np.asarray(search.query, dtype=np.float32)
        vectors = np.stack([np.asarray(h.values[search.column], dtype=np.float32) for h in candidates])
        scores = vectors @ query / np.maximum(np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(query)), 1e-12), 1e-12)
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i].row_key))[:search.k]
        return [Hit(rank, candidates[i].row_key, float(scores[i]) if search.with_scores else None,
                    {n: candidates[i].values[n] for n in search.select if n != ROW_KEY})
                for rank, i in enumerate(order, start=1)]

    def keyword_search(self, search: KeywordSearch) -> list[Hit]:
        if self.indexes().get(search.column) != "bm25":
            raise LookupError(f"keyword search needs a bm25 index on {self._name}.{search.column}; build the index asset first")
        return self._hits(pg_sql.keyword_search(self._pg, search, where=search.where, with_scores=False, indexed=True),
                          search.select, False)

    def explain(self, search: VectorSearch) -> str:
        statement = pg_sql.vector_search(self._pg, search, self._ranks_by_index(search.column))
        with self._lake._cursor() as cursor:
            return "\n".join(str(r[0]) for r in _all(cursor, pg_sql.explain(statement)))

    def _ranks_by_index(self, column: str) -> bool:
        """Whether `column` has a ranking index, so a search takes the index-served order form. Known
        ranking indexes are remembered (they are never dropped, only their table); an unindexed column is
        asked again each time, since the index asset may build one meanwhile."""
        if column in self._ranking_indexes:
            return True
        if pg_sql.is_ranking_index(self.indexes().get(column)):
            self._ranking_indexes.add(column)
            return True
        return False

    # --- indexes -----------------------------------------------------------------------------------

    def _indexes(self, cursor: psycopg.Cursor, table: PgTable | None = None) -> dict[str, str]:
        return {str(column): pg_sql.normalize_index_type(str(kind))
                for column, _, kind in _all(cursor, pg_sql.index_catalog(table or self._pg))}

    def indexes(self) -> dict[str, str]:
        with self._lake._cursor() as cursor:
            return self._indexes(cursor)

    def create_index(self, column: str, kind: str) -> bool:
        check_index_kind(self.schema, column, kind)
        try:
            with self._locked() as cursor:
                existing = self._indexes(cursor)
                if existing.get(column) == kind:
                    return False
                # pg_deeplake holds one index per column: another kind there raises IndexExistsError.
                _execute(cursor, pg_sql.create_index(self._pg, column, kind, existing))
        except psycopg.errors.DuplicateTable:
            return False  # the index's name is taken: built by a writer the catalog did not show yet
        return True

    # --- versions and tags -------------------------------------------------------------------------

    def tag_version(self, tag: str) -> str:
        self._writable()
        if not isinstance(tag, str) or not tag or "\x00" in tag:
            raise ValueError(f"a tag must be a non-empty string without NUL characters, got {tag!r}")
        workspace, written = self._lake.workspace, None
        with self._locked() as cursor:
            found = _all(cursor, pg_sql.table_tag(workspace, self._name, tag))
            if found:
                return str(found[0][0])
            version = int(self._version(cursor))
            same = _all(cursor, pg_sql.snapshot_of_version(workspace, self._name, version))
            if same:  # another tag pins this version: share its snapshot
                snapshot = same[0][0]
            else:
                snapshot = pg_sql.tag_table_name(self._name, tag)
                target = PgTable(self.schema, workspace, name=snapshot)
                # A leftover of that name is no tag's (the tag table says so): replace it.
                _execute(cursor, pg_sql.drop_table(target))
                _execute(cursor, pg_sql.create_table(target, access_method=self._lake.access_method))
                copied = _execute(cursor, pg_sql.copy_rows(self._pg, target)).rowcount
                if self._lake.access_method == "deeplake":  # deeplake_index exists only there
                    for column, kind in self._indexes(cursor).items():
                        if kind in INDEX_KINDS:
                            _execute(cursor, pg_sql.create_index(target, column, kind))
                written = (target, copied)
            _execute(cursor, pg_sql.record_tag(workspace, self._name, tag, version, snapshot))
        if written is not None:
            self._await_visible(None, written[1], (), None, table=written[0])
        return str(version)

    def open_tag(self, tag: str) -> Table:
        workspace = self._lake.workspace
        with self._lake._cursor() as cursor:
            found = _all(cursor, pg_sql.table_tag(workspace, self._name, tag))
            if not found:
                tags = [str(r[0]) for r in _all(cursor, pg_sql.table_tags(workspace, self._name))]
                raise KeyError(f"table {self._name!r} has no tag {tag!r} (tags: {', '.join(tags) or 'none'})")
            version, snapshot = found[0]
            present = {r[0] for r in _all(cursor, pg_sql.table_columns(PgTable(self.schema, workspace, name=snapshot)))}
        # Columns added after the tag are not in its snapshot: the pinned view does not offer them.
        schema = TableSchema(self._name, tuple(c for c in self.schema.columns if c.name in present))
        return DeepLakePgTable(schema, self._lake, relation=snapshot, tag=tag, tagged_version=str(version))

    @property
    def version(self) -> str:
        if self._read_only:
            return str(self._tagged_version)
        with self._lake._cursor() as cursor:
            return self._version(cursor)

    @property
    def uri(self) -> str:
        url = self._lake.table_url(self._name)
        return f"{url}@{self._tag}" if self._tag is not None else url

    def __len__(self) -> int:
        with self._lake._cursor() as cursor:
            return self._count(cursor)


class DeepLakePg(Lake):
    """Every table a PostgreSQL table `USING deeplake` in the schema `workspace` of one Deep Lake PG
    database, reached through one connection pool (opened on first use, closed by `close()`)."""

    def __init__(self, conninfo: str, workspace: str, *, min_size: int = 1, max_size: int = 4,
                 visibility_timeout_s: float = 10.0, access_method: str = "deeplake"):
        """`conninfo` is a libpq string (`pg_conninfo`); `workspace` the PostgreSQL schema of the tables.

        `access_method` exists only for tests on plain PostgreSQL, which has no `deeplake` access
        method: they pass "heap" and exercise everything but indexes and searches (which need
        pg_deeplake's `deeplake_index` and `<#>`). Production leaves it at "deeplake".
        """
        pg_sql.create_schema(workspace)  # refuses a name PostgreSQL would truncate or psycopg misread
        # A throwaway CREATE TABLE runs pg_sql's check of the access method now rather than on first write.
        pg_sql.create_table(PgTable(TableSchema("t", ()), workspace), access_method=access_method)
        if min_size < 0 or max_size < max(1, min_size):
            raise ValueError(f"pool sizes need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}")
        if not visibility_timeout_s >= 0:
            raise ValueError(f"visibility_timeout_s must be >= 0, got {visibility_timeout_s!r}")
        params = conninfo_to_dict(conninfo)  # a malformed string fails here, not on first use
        self._conninfo = conninfo
        self.workspace = workspace
        self.min_size, self.max_size = min_size, max_size
        self.visibility_timeout_s = float(visibility_timeout_s)
        self.access_method = access_method
        host = str(params.get("host") or params.get("hostaddr") or "localhost")
        host = f"[{host}]" if ":" in host and "," not in host else host
        database = params.get("dbname") or params.get("user") or ""
        self.url = f"postgresql://{host}:{params.get('port') or 5432}/{quote(str(database), safe='')}"
        self._pool: ConnectionPool | None = None
        self._pool_pid: int | None = None
        self._pool_lock = threading.Lock()
        self._bookkeeping_ready = False

    def __repr__(self) -> str:  # never the conninfo: it holds the password
        return f"DeepLakePg({self.url!r}, workspace={self.workspace!r})"

    def table_url(self, name: str) -> str:
        """`postgresql://host:port/db/<workspace>.<table>` (no credentials)."""
        return f"{self.url}/{quote(f'{self.workspace}.{name}', safe='.-_~')}"

    # --- connections -------------------------------------------------------------------------------

    def _get_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # A pool inherited through fork is the parent's: closing it here would close the
                # parent's sessions, so a child only drops it and opens its own.
                pool = ConnectionPool(self._conninfo, min_size=self.min_size, max_size=self.max_size, open=False,
                                      name=f"dlk-{self.workspace}", check=ConnectionPool.check_connection,
                                      kwargs={"autocommit": True, "cursor_factory": psycopg.ClientCursor})
                pool.open()
                self._pool, self._pool_pid = pool, os.getpid()
            return self._pool

    def close(self) -> None:
        """Close the pool's connections (a later call opens a new pool)."""
        with self._pool_lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.close()
            self._pool, self._pool_pid = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor]:
        """A cursor on an autocommit connection: each read sees the latest commits."""
        with self._get_pool().connection() as connection, connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def _transaction(self, lock: Statement, holder: str) -> Iterator[psycopg.Cursor]:
        with self._get_pool().connection() as connection, connection.transaction(), connection.cursor() as cursor:
            timeout = lock_timeout_s()
            _execute(cursor, pg_sql.set_lock_timeout(timeout))
            try:
                _execute(cursor, lock)
            except psycopg.errors.LockNotAvailable as exc:
                raise TableLockTimeout(f"{holder} is being written by another process for more than {timeout:g} s "
                                       f"(PostgreSQL advisory lock {lock.params[0]}); retry later or raise "
                                       "DLK_LOCK_TIMEOUT_S") from exc
            yield cursor

    def _locked(self, table: PgTable):
        """One transaction that holds `table`'s writer lock from its first statement; an exception
        in the block rolls the whole transaction back."""
        return self._transaction(pg_sql.lock_table(table), f"table {table.table_name!r}")

    def _ensure_bookkeeping(self) -> None:
        """Create the workspace's schema, version and tag tables once (only when they are missing,
        so a reader without CREATE rights never needs them)."""
        if self._bookkeeping_ready:
            return
        with self._cursor() as cursor:
            present = {r[0] for r in _all(cursor, pg_sql.existing_relations(self.workspace, pg_sql.BOOKKEEPING))}
        if present != set(pg_sql.BOOKKEEPING):
            with self._transaction(pg_sql.lock_workspace(self.workspace), f"workspace {self.workspace!r}") as cursor:
                for statement in pg_sql.create_bookkeeping(self.workspace):
                    _execute(cursor, statement)
        self._bookkeeping_ready = True

    def bookkeeping(self, statement: Statement) -> list[tuple]:
        """Run one statement on the workspace's bookkeeping tables (`pg_sql.BOOKKEEPING`, created first
        if missing) on an autocommit connection; its rows, if it returns any."""
        self._ensure_bookkeeping()
        with self._cursor() as cursor:
            _execute(cursor, statement)
            return list(cursor.fetchall()) if cursor.description else []

    # --- the Lake interface ------------------------------------------------------------------------

    def _columns(self, cursor: psycopg.Cursor, table: PgTable) -> list[str]:
        return [str(r[0]) for r in _all(cursor, pg_sql.table_columns(table))]

    def table(self, schema: TableSchema) -> DeepLakePgTable:
        self._ensure_bookkeeping()
        table = PgTable(schema, self.workspace)
        with self._cursor() as cursor:
            present = set(self._columns(cursor, table))
        if present and set(schema.column_names) <= present:
            return DeepLakePgTable(schema, self)  # readers never wait behind a writer
        opened = DeepLakePgTable(schema, self)
        with self._locked(table) as cursor:
            present = set(self._columns(cursor, table))  # a writer elsewhere may have just made it
            if not present:
                _execute(cursor, pg_sql.create_table(table, access_method=self.access_method))
                opened._bump(cursor, f"create table {schema.name}")
            else:
                added = [name for name in schema.column_names if name not in present]
                for name in added:
                    _execute(cursor, pg_sql.add_column(table, name))
                if added:
                    opened._bump(cursor, f"schema: add {', '.join(added)}")
        return opened

    def table_names(self) -> list[str]:
        with self._cursor() as cursor:
            names = [str(r[0]) for r in _all(cursor, pg_sql.table_names(self.workspace))]
            hidden = set(pg_sql.BOOKKEEPING)
            if pg_sql.TAGS_TABLE in names:
                hidden |= {str(r[0]) for r in _all(cursor, pg_sql.snapshot_tables(self.workspace))}
        return sorted(name for name in names if name not in hidden)

    def exists(self, name: str) -> bool:
        return name in self.table_names()

    def drop(self, name: str) -> bool:
        if not self.exists(name):
            return False
        self._ensure_bookkeeping()
        table = PgTable(TableSchema(name, ()), self.workspace)
        with self._locked(table) as cursor:
            if not _all(cursor, pg_sql.existing_relations(self.workspace, [name])):
                return False  # another writer dropped it first
            for snapshot in sorted({str(r[2]) for r in _all(cursor, pg_sql.table_tags(self.workspace, name))}):
                _execute(cursor, pg_sql.drop_table(PgTable(TableSchema(snapshot, ()), self.workspace)))
            _execute(cursor, pg_sql.drop_table(table))
            for statement in pg_sql.forget_table(self.workspace, name):
                _execute(cursor, statement)
        return True
