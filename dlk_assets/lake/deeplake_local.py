"""Tables as Deep Lake 4.x datasets run by the embedded engine, under one root: a local folder (the
default) or a prefix in object storage (`dlk_assets.lake.locations`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import deeplake
import numpy as np

from dlk_assets.lake.appended_scan import AppendedScan, with_appended
from dlk_assets.lake.disk_space import ensure_free_space, folder_bytes
from dlk_assets.lake.heads import announced_write, read_head
from dlk_assets.lake.key_index import KeyIndex
from dlk_assets.lake.locations import LakeLocation, LocalFolder, ObjectPrefix
from dlk_assets.lake.maxsim_scan import MaxSimScan
from dlk_assets.lake.schema import PARTITION, ROW_KEY, Column, Kind, TableSchema
from dlk_assets.lake.tables import (
    Lake,
    PartitionShrinkError,
    PartitionWrite,
    Table,
    check_index_kind,
)
from dlk_assets.lake.validation import RowValidationError, validate_rows
from dlk_assets.lake.vector_scan import VectorScan, unit_query, unit_rows
from dlk_assets.retrieval.filters import Filter, filter_fields
from dlk_assets.retrieval.requests import Hit, KeywordSearch, VectorSearch
from dlk_assets.retrieval.tql import (
    check_search,
    compile_filter,
    compile_keyword_search,
    compile_search,
    identifier,
    quote_text,
)

_FILTERS_KEPT = 16
_BAG_BLOCK = 10_000
HEAD_TRUSTED_S = 1.0  # how long a reader goes on trusting the writers' record without refreshing

_INDEX_TYPES = {
    "pooled_quantized": lambda: deeplake.types.PooledQuantized,
    "clustered": lambda: deeplake.types.Clustered,
    "bm25": lambda: deeplake.types.BM25,
    "exact_text": lambda: deeplake.types.Exact,
}


def _deeplake_type(column: Column):
    types = deeplake.types
    return {
        Kind.TEXT: lambda: types.Text(),
        Kind.INT: lambda: types.Int64(),
        Kind.FLOAT: lambda: types.Float32(),
        Kind.JSON: lambda: types.Dict(),
        Kind.INT_LIST: lambda: types.Array("int64", dimensions=1),
        Kind.BOXES: lambda: types.Array("float32", dimensions=2),
        # Deep Lake's Embedding type always carries a clustered index (built on commit under
        # IndexingMode.Always); multi-vectors are plain arrays that get a pooled_quantized index on demand.
        Kind.VECTOR: lambda: types.Embedding(column.dim),
        Kind.MULTI_VECTOR: lambda: types.Array("float32", dimensions=2),
    }[column.kind]()


def _to_python(column: Column, value: Any) -> Any:
    if column.kind is Kind.TEXT:
        return "" if value is None else value  # Deep Lake reads an empty string back as None
    if column.kind is Kind.JSON:
        # to_dict() turns nested lists into numpy arrays; the Dict's text form is its exact JSON.
        return json.loads(str(value)) if not isinstance(value, dict) else value
    if column.kind is Kind.INT_LIST:
        return [int(v) for v in np.asarray(value).tolist()]
    if column.kind is Kind.BOXES:
        return np.asarray(value, dtype=np.float32).reshape(-1, 4).tolist()
    if column.is_vector:
        return np.asarray(value, dtype=np.float32)
    if column.kind is Kind.INT:
        return int(value)
    if column.kind is Kind.FLOAT:
        return float(value)
    return value


def _column_to_python(column: Column, values: Any) -> list[Any]:
    """A whole result column at once (scalar columns arrive as numpy arrays or lists)."""
    if column.kind is Kind.TEXT:
        return ["" if v is None else v for v in values]
    if column.kind is Kind.INT:
        return np.asarray(values, dtype=np.int64).reshape(-1).tolist()
    if column.kind is Kind.FLOAT:
        return np.asarray(values, dtype=np.float64).reshape(-1).tolist()
    if column.kind is Kind.VECTOR and isinstance(values, np.ndarray) and values.ndim == 2:
        return list(values.astype(np.float32, copy=False))
    return [_to_python(column, v) for v in values]


def _approx_bytes(columns: dict[str, list[Any]]) -> int:
    """Roughly what a write stores: array bytes, text bytes, a few bytes per other value."""
    total = 0
    for values in columns.values():
        if isinstance(values, np.ndarray):  # a whole column as one block (vectors, integers)
            total += values.nbytes if values.dtype != object else 16 * len(values)
            continue
        if values and all(type(value) is str for value in values):  # the common text column, summed at C speed
            total += sum(map(len, values))
            continue
        for value in values:
            if isinstance(value, np.ndarray):
                total += value.nbytes
            elif isinstance(value, (str, bytes)):
                total += len(value)
            else:
                total += 16
    return total


class DeepLakeTable(Table):
    """One Deep Lake dataset. Every write holds the table's inter-process lock from the first read it
    depends on to its commit."""

    def __init__(self, schema: TableSchema, dataset, url: str, location: LakeLocation, read_only: bool = False):
        super().__init__(schema)
        self._ds = dataset
        self.url = url
        self._read_only = read_only
        self._location = location
        self._head = location.head_file(schema.name)
        self._refreshed_at = time.monotonic()  # opening reads the latest commit
        self._scan_cache: dict[str, tuple[str, VectorScan | AppendedScan | MaxSimScan]] = {}
        self._filter_cache: dict[tuple[str, str], np.ndarray] = {}
        self._keys: KeyIndex | None = None
        self._keys_lock = threading.Lock()  # readers in other threads never see a half-applied write
        if not read_only:
            # Commits leave index work to `create_index`, run once after ingestion (the index asset): a
            # clustered index kept up at every commit made a 10k x 384 partition commit take ~4 s
            # instead of ~0.1 s, and one built up over many commits recalls less than one built at
            # once. Nothing goes missing meanwhile: the engine scans rows its indexes do not cover
            # yet, and `search` ranks from its own in-memory copy anyway.
            self._ds.indexing_mode = deeplake.IndexingMode.Off

    def _query(self, tql: str):
        return self._ds.query(tql)

    def _offsets_where(self, condition: str, columns: tuple[str, ...] = (ROW_KEY, PARTITION)) -> list[int]:
        # Row numbers inside a filtered query count within the result, so number the rows first
        # (with the `columns` the condition reads).
        selected = ", ".join(identifier(name) for name in dict.fromkeys(columns))
        result = self._query(f"SELECT rn FROM (SELECT ROW_NUMBER() AS rn, {selected}) WHERE {condition}")
        return sorted(int(v) for v in np.asarray(result["rn"][:]).reshape(-1))

    def _key_index(self) -> KeyIndex:
        """The key index of the version the dataset is at (callers refresh first and hold `_keys_lock`):
        kept from this object's own last write, or read anew when another writer has committed since."""
        version = self.version
        if self._keys is None or self._keys.version != version:
            empty = not len(self._ds)
            self._keys = KeyIndex(version, [] if empty else self._ds[ROW_KEY][:], [] if empty else self._ds[PARTITION][:])
        return self._keys

    def _writable(self) -> None:
        if self._read_only:
            raise PermissionError(f"table {self.schema.name!r} is opened read-only (a pinned tag)")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The table's write lock (callers refresh the dataset once they hold it), recording for readers
        that a write is under way and then the version it left."""
        self._writable()
        with self._location.lock(self.schema.name), announced_write(self._head, lambda: self.version):
            yield

    def _catch_up(self) -> None:
        """Move to the latest commit before a read, unless the last writer's record says the dataset is
        there already (`heads.py`: a refresh costs tens of ms on a long history). A refresh older than
        `HEAD_TRUSTED_S` is renewed anyway, so a writer that went around the lock (a tool writing the
        dataset directly) is seen within that time."""
        if self._read_only:
            return
        now = time.monotonic()
        if self._head is None or now - self._refreshed_at > HEAD_TRUSTED_S or read_head(self._head) != self.version:
            self._ds.refresh()
            self._refreshed_at = now

    def _ensure_space(self, columns: dict[str, list[Any]], rows: int) -> None:
        folder = self._location.local_folder(self.schema.name)
        if folder is not None:  # object storage has no local disk to fill
            ensure_free_space(folder, _approx_bytes(columns), f"{rows} row(s) of table {self.schema.name!r}")

    def _check_no_clashes(self, keys: list[str], partition: str, same_partition_ok: bool) -> None:
        clash = self._key_index().first_clash(keys, partition, same_partition_ok)
        if clash is not None:
            key, other = clash
            where = f"partition {other!r}" if other != partition else f"this partition ({partition!r}); append only adds new keys"
            raise RowValidationError(f"table {self.schema.name!r}: row {key!r} already belongs to {where}")

    def _commit_or_rollback(self, change, message: str, partition: str, dropped: list[int],
                            appended: dict[str, list[Any]] | None) -> None:
        # Either the whole change is committed or none of it: a failure drops the uncommitted edits.
        # `dropped` (row offsets) and `appended` (the columns appended to `partition`) keep the key
        # index and the vector searches in step.
        before = self.version
        try:
            change()
            self._ds.commit(message)
        except BaseException:
            self._ds.rollback()
            self._keys = None
            raise
        if self._keys is not None:
            self._keys.after_write(self.version, dropped, partition, appended[ROW_KEY] if appended else [])
        if appended and not dropped:
            self._carry_scans(before, appended)

    def _carry_scans(self, before: str, appended: dict[str, list[Any]]) -> None:
        """Carry the vector searches built at `before` over to the version this object's own commit made
        by appending rows (`appended_scan.py`): no column re-read, no inverted-file rebuild."""
        for column, (version, scan) in list(self._scan_cache.items()):
            if version == before and isinstance(scan, VectorScan | AppendedScan):
                rows = unit_rows(np.array(appended[column], dtype=np.float32).reshape(len(appended[column]), -1))
                self._scan_cache[column] = (self.version, with_appended(scan, rows))

    def replace_partition(self, partition: str, rows: list[dict[str, Any]], message: str,
                          shrink_allowed: bool = True) -> PartitionWrite:
        self._writable()
        columns = validate_rows(self.schema, rows, partition)
        with self._locked(), self._keys_lock:
            # Under the lock: a writer that passed the check cannot be overtaken by another filling the disk.
            self._ensure_space(columns, len(rows))
            self._ds.refresh()
            self._check_no_clashes(columns[ROW_KEY], partition, same_partition_ok=True)
            stale = self._key_index().partition_offsets(partition)
            if not shrink_allowed and len(rows) < len(stale):
                raise PartitionShrinkError(self.schema.name, partition, len(stale), len(rows))

            def change():
                for offset in reversed(stale):  # reverse order keeps the remaining offsets valid
                    self._ds.delete(offset)
                if rows:
                    self._ds.append(columns)

            self._commit_or_rollback(change, message, partition, stale, columns if rows else None)
            return PartitionWrite(self.schema.name, partition, len(rows), len(stale), self.version)

    def append(self, partition: str, rows: list[dict[str, Any]], message: str, skip_existing: bool = False) -> PartitionWrite:
        self._writable()
        columns = validate_rows(self.schema, rows, partition)
        with self._locked(), self._keys_lock:
            self._ds.refresh()
            present = self._keys_in_partition(columns[ROW_KEY], partition) if skip_existing else set()
            keep = [i for i, key in enumerate(columns[ROW_KEY]) if key not in present]
            if not keep:
                return PartitionWrite(self.schema.name, partition, 0, 0, self.version, len(present))
            if present:
                columns = {name: [values[i] for i in keep] for name, values in columns.items()}
            self._ensure_space(columns, len(keep))
            self._check_no_clashes(columns[ROW_KEY], partition, same_partition_ok=False)
            self._commit_or_rollback(lambda: self._ds.append(columns), message, partition, [], columns)
            return PartitionWrite(self.schema.name, partition, len(keep), 0, self.version, len(present))

    def upsert(self, partition: str, rows: list[dict[str, Any]], message: str) -> PartitionWrite:
        self._writable()
        columns = validate_rows(self.schema, rows, partition)
        if not rows:
            return PartitionWrite(self.schema.name, partition, 0, 0, self.version)
        with self._locked(), self._keys_lock:
            self._ensure_space(columns, len(rows))  # under the lock, as in `replace_partition`
            self._ds.refresh()
            self._check_no_clashes(columns[ROW_KEY], partition, same_partition_ok=True)
            stale = self._key_index().offsets_of(columns[ROW_KEY], partition)

            def change():
                for offset in reversed(stale):  # reverse order keeps the remaining offsets valid
                    self._ds.delete(offset)
                self._ds.append(columns)

            self._commit_or_rollback(change, message, partition, stale, columns)
            return PartitionWrite(self.schema.name, partition, len(rows), len(stale), self.version)

    def delete_rows(self, partition: str, row_keys: list[str], message: str) -> int:
        with self._locked(), self._keys_lock:
            self._ds.refresh()
            stale = self._key_index().offsets_of(row_keys, partition)
            if stale:
                self._commit_or_rollback(lambda: [self._ds.delete(offset) for offset in reversed(stale)], message,
                                         partition, stale, None)
            return len(stale)

    def _keys_in_partition(self, keys: list[str], partition: str) -> set[str]:
        return {key for key, holder in self._key_index().partitions_of(keys).items() if holder == partition}

    def partitions_of(self, row_keys: list[str]) -> dict[str, str]:
        if not row_keys:
            return {}
        with self._keys_lock:
            self.refresh()
            return self._key_index().partitions_of(row_keys)

    def row_keys(self, partition: str) -> set[str]:
        with self._keys_lock:
            self.refresh()
            return self._key_index().row_keys(partition)

    def _rows(self, condition: str | None, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        names = columns or self.schema.column_names
        specs = [self.schema.column(n) for n in dict.fromkeys((ROW_KEY, *names))]
        self._catch_up()
        if not len(self._ds):
            return []
        where = f" WHERE {condition}" if condition else ""
        result = self._query(f"SELECT {', '.join(identifier(c.name) for c in specs)}{where} ORDER BY {ROW_KEY}")
        data = [_column_to_python(c, result[c.name][:]) for c in specs]
        return [dict(zip((c.name for c in specs), values)) for values in zip(*data)]

    def read_partition(self, partition: str, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self._rows(f"{PARTITION} == {quote_text(partition)}", columns)

    def read_where(self, where: Filter | None, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self._rows(compile_filter(where, self.schema) if where is not None else None, columns)

    def read_rows(self, row_keys: list[str], columns: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        if not row_keys:
            return {}
        names = tuple(dict.fromkeys((ROW_KEY, *(columns or self.schema.column_names))))
        with self._keys_lock:  # the offsets and the read belong to one version
            self.refresh()
            if not len(self._ds):
                return {}
            rows = self._values_at(np.asarray(self._key_index().row_offsets(row_keys), dtype=np.int64), names)
        return {row[ROW_KEY]: row for row in sorted(rows, key=lambda row: row[ROW_KEY])}

    def partition_counts(self) -> dict[str, int]:
        self._catch_up()
        values = self._ds[PARTITION][:] if len(self._ds) else []
        partitions, counts = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True) if len(values) else ([], [])
        return {str(p): int(c) for p, c in zip(partitions, counts)}

    def _hits(self, result, select: tuple[str, ...], scores: np.ndarray | None) -> list[Hit]:
        names = [n for n in select if n != ROW_KEY]
        keys = _column_to_python(self.schema.column(ROW_KEY), result[ROW_KEY][:])
        data = [_column_to_python(self.schema.column(n), result[n][:]) for n in names]
        return [Hit(rank=i + 1, row_key=key, score=None if scores is None else float(scores[i]), values=dict(zip(names, values)))
                for i, (key, *values) in enumerate(zip(keys, *data))]

    def search(self, search: VectorSearch) -> list[Hit]:
        """Rank rows here, from the column held in memory per table version (`vector_scan`, `maxsim_scan`).

        Deep Lake's clustered index misses 10-40% of the true top-10 once built up over partition
        commits, and 4.7.4 answers `WHERE … ORDER BY <similarity> LIMIT k` wrongly once rows have been
        deleted from an indexed table (every partition replace deletes rows). So the engine only
        selects a filter's row numbers; scoring is exact (or an inverted file with calibrated recall
        at `IVF_MIN_ROWS` rows and more) and the hits' columns are read by row number."""
        check_search(search, self.schema)
        self._catch_up()
        if not len(self._ds):
            return []
        allowed = self._filter_offsets(search.where) if search.where is not None else None
        scan = self._scan(search.column, search.mode)
        query = np.asarray(search.query, dtype=np.float32)
        found = scan.search(query if search.mode == "maxsim" else unit_query(query), search.k, allowed)
        names = tuple(dict.fromkeys((ROW_KEY, *search.select)))
        values = self._values_at(found.rows, names)
        return [Hit(rank=rank, row_key=row[ROW_KEY], score=float(score) if search.with_scores else None,
                    values={n: row[n] for n in names if n != ROW_KEY})
                for rank, (row, score) in enumerate(zip(values, found.scores), start=1)]

    def _filter_offsets(self, where: Filter) -> np.ndarray:
        """Row numbers the filter keeps at this version; the last few filters' answers are kept, since
        a long-lived reader (`dlk serve`, one filter per tenant) asks the same ones again."""
        condition = compile_filter(where, self.schema)
        key = (self.version, condition)
        if key not in self._filter_cache:
            offsets = self._offsets_where(condition, tuple(sorted(filter_fields(where))))
            while len(self._filter_cache) >= _FILTERS_KEPT:
                self._filter_cache.pop(next(iter(self._filter_cache)))
            self._filter_cache[key] = np.asarray(offsets, dtype=np.int64)
        return self._filter_cache[key]

    def _values_at(self, offsets: np.ndarray, names: tuple[str, ...]) -> list[dict[str, Any]]:
        """The named columns of the rows at `offsets` (in that order), read by row number."""
        if not len(offsets):
            return []
        at = offsets.tolist()
        # One read per column, all in flight at once: hits fall in different chunks of every column,
        # and reading 12 columns of 10 hits one after the other took 5 ms against 1.6 ms this way.
        pending = {n: self._ds[n].get_async(at) for n in names}
        columns = {n: _column_to_python(self.schema.column(n), future.result()) for n, future in pending.items()}
        return [dict(zip(columns, values)) for values in zip(*columns.values())]

    def _scan(self, column: str, mode: str) -> VectorScan | AppendedScan | MaxSimScan:
        """The column's in-memory search structure, built once per table version: a long-lived reader
        such as `dlk serve` pays the read (and, past `IVF_MIN_ROWS`, the inverted file) once per commit."""
        version = self.version
        cached = self._scan_cache.get(column)
        if cached is None or cached[0] != version:
            self._scan_cache.pop(column, None)  # release the old version's matrix before reading the new one
            if mode == "maxsim":
                scan = MaxSimScan(self._read_bags(column), lambda rows: list(self._ds[column][rows.tolist()]))
            else:
                matrix = unit_rows(np.array(self._ds[column][:], dtype=np.float32).reshape(len(self._ds), -1))
                scan = VectorScan(matrix, background=True)  # exact answers while its inverted file builds
            cached = self._scan_cache[column] = (version, scan)
        return cached[1]

    def _read_bags(self, column: str) -> Iterator[list[np.ndarray]]:
        for start in range(0, len(self._ds), _BAG_BLOCK):  # one block of rows in float32 at a time
            yield [np.asarray(bag, dtype=np.float32) for bag in self._ds[column][start:start + _BAG_BLOCK]]

    def describe_search(self, column: str, mode: str = "vector", wait: bool = True) -> str:
        """How a search of `column` is answered at this version and the recall it delivers (with `wait`,
        the structure searches settle on rather than the exact scan standing in while it is built)."""
        if not len(self._ds):
            return "empty table"
        scan = self._scan(column, mode)
        if wait:
            scan.wait_built()
        return scan.describe()

    def keyword_search(self, search: KeywordSearch) -> list[Hit]:
        if self.indexes().get(search.column) != "bm25":
            raise LookupError(f"keyword search needs a bm25 index on {self.schema.name}.{search.column}; build the index asset first")
        return self._hits(self._query(compile_keyword_search(search, self.schema)), search.select, None)

    def explain(self, search: VectorSearch) -> str:
        return str(self._ds.explain_query(compile_search(search, self.schema)))

    def create_index(self, column: str, kind: str) -> bool:
        check_index_kind(self.schema, column, kind)
        with self._locked():
            self._ds.refresh()
            if self.indexes().get(column) == kind:
                self._commit_indexed(f"index rows written since the last index update of {column}")
                return False
            # A commit adds to an index in place (measured: +10 rows on a 100k x 384 index grows the
            # table by their bytes only), but building one writes it whole; it is never larger than
            # the table it indexes, so the table's size is what must be free.
            table_dir = self._location.local_folder(self.schema.name)
            if table_dir is not None:
                ensure_free_space(table_dir, folder_bytes(table_dir), f"a {kind} index on {self.schema.name}.{column}",
                                  amplification=1)
            if not (kind == "clustered" and self._ds[column].indexes):  # an Embedding column is born with it
                self._ds[column].create_index(_INDEX_TYPES[kind]())
            self._ds.metadata["dlk_index_kinds"] = {**self._index_kinds(), column: kind}
            self._commit_indexed(f"create {kind} index on {column}")
            return True

    def _commit_indexed(self, message: str) -> None:
        """Commit with every index brought up to date (the engine indexes pending rows only under Always)."""
        self._ds.indexing_mode = deeplake.IndexingMode.Always
        try:
            self._ds.commit(message)
        finally:
            self._ds.indexing_mode = deeplake.IndexingMode.Off

    def _index_kinds(self) -> dict[str, str]:
        # Deep Lake reports index objects without a readable kind, so the table records the kind it asked for.
        metadata = self._ds.metadata
        recorded = metadata["dlk_index_kinds"] if "dlk_index_kinds" in metadata else {}  # noqa: SIM401 (Metadata has no get)
        return {str(k): str(v) for k, v in dict(recorded).items()}

    def indexes(self) -> dict[str, str]:
        recorded = dict(self._index_kinds())
        present = [c for c in self.schema.all_columns if self._ds[c.name].indexes]
        return {c.name: recorded.get(c.name, "clustered" if c.kind is Kind.VECTOR else "unknown") for c in present}

    def tag_version(self, tag: str) -> str:
        with self._locked():
            self._ds.refresh()
            if tag in self._ds.tags.names():
                return self._ds.tags[tag].version
            self._ds.tag(tag)
            return self.version

    def open_tag(self, tag: str) -> Table:
        if tag not in self._ds.tags.names():
            raise KeyError(f"table {self.schema.name!r} has no tag {tag!r} (tags: {', '.join(self._ds.tags.names()) or 'none'})")
        return DeepLakeTable(self.schema, self._ds.tags[tag].open(), f"{self.url}@{tag}", self._location, read_only=True)

    @property
    def version(self) -> str:
        return str(self._ds.version)

    @property
    def uri(self) -> str:
        return self.url

    def __len__(self) -> int:
        return len(self._ds)

    def refresh(self) -> None:
        self._catch_up()


class DeepLakeDatasets(Lake):
    """Every table one Deep Lake dataset under a `LakeLocation`, named after the table."""

    def __init__(self, location: LakeLocation):
        self.location = location

    def _url(self, name: str) -> str:
        return self.location.dataset_url(name)

    @property
    def url(self) -> str:
        """The lake's root URL."""
        return self.location.url

    def exists(self, name: str) -> bool:
        return deeplake.exists(self._url(name), creds=self.location.creds)

    def table_names(self) -> list[str]:
        return [name for name in self.location.names() if self.exists(name)]

    def drop(self, name: str) -> bool:
        url = self._url(name)
        with self.location.lock(name), announced_write(self.location.head_file(name), lambda: None):
            if not deeplake.exists(url, creds=self.location.creds):
                return False
            deeplake.delete(url, creds=self.location.creds)
        return True

    def _open(self, url: str):
        return deeplake.open(url, creds=self.location.creds)

    def table(self, schema: TableSchema) -> DeepLakeTable:
        url = self._url(schema.name)
        self.location.prepare()
        if self.exists(schema.name):
            # Readers never wait behind a writer: a table that has every column opens without the lock.
            dataset = self._open(url)
            if {c.name for c in schema.all_columns} <= {c.name for c in dataset.schema.columns}:
                return DeepLakeTable(schema, dataset, url, self.location)
        # Creation and schema changes hold the lock too: two processes creating one table at once
        # otherwise fail with LogExistsError / BranchNotFoundError.
        dataset = None
        with self.location.lock(schema.name), announced_write(self.location.head_file(schema.name),
                                                                lambda: str(dataset.version)):
            dataset = self._open(url) if self.exists(schema.name) else self._create(url)
            present = {c.name for c in dataset.schema.columns}
            added = [c for c in schema.all_columns if c.name not in present]
            for column in added:
                dataset.add_column(column.name, _deeplake_type(column))
            if added:
                dataset.commit(f"schema: add {', '.join(c.name for c in added)}")
        return DeepLakeTable(schema, dataset, url, self.location)

    def _create(self, url: str):
        try:
            dataset = deeplake.create(url, creds=self.location.creds)
        except Exception:
            # A writer on another machine (no shared lock there) created it first: use theirs.
            if deeplake.exists(url, creds=self.location.creds):
                return self._open(url)
            raise
        dataset.metadata["dlk_index_kinds"] = {}
        return dataset


class LocalDeepLake(DeepLakeDatasets):
    """Deep Lake datasets under the folder `root/<table name>` (the embedded default)."""

    def __init__(self, root: str | Path):
        super().__init__(LocalFolder(root))
        self.root = Path(root)


class ObjectStoreDeepLake(DeepLakeDatasets):
    """Deep Lake datasets at `<url>/<table name>` in object storage; write locks under `lock_dir`."""

    def __init__(self, url: str, lock_dir: str | Path, creds: dict[str, str] | None = None):
        super().__init__(ObjectPrefix(url, lock_dir, creds))
