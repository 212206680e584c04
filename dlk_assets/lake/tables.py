"""The table interface every backend implements (local Deep Lake now, Deep Lake PG later)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from dlk_assets.lake.schema import Kind, TableSchema
from dlk_assets.retrieval.filters import Filter
from dlk_assets.retrieval.requests import Hit, KeywordSearch, VectorSearch

INDEX_KINDS = ("pooled_quantized", "clustered", "bm25", "exact_text")


def check_index_kind(schema: TableSchema, column: str, kind: str) -> None:
    """`ValueError` unless an index of `kind` fits `column`: pooled_quantized on a multi-vector whose
    dimension is divisible by 8, clustered on a vector."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {INDEX_KINDS}")
    spec = schema.column(column)
    if kind == "pooled_quantized" and spec.kind is not Kind.MULTI_VECTOR:
        raise ValueError(f"pooled_quantized needs a multi-vector column; {column!r} is {spec.kind.value}")
    if kind == "pooled_quantized" and spec.dim % 8:
        raise ValueError(f"pooled_quantized needs a dimension divisible by 8; {column!r} has {spec.dim}")
    if kind == "clustered" and spec.kind is not Kind.VECTOR:
        raise ValueError(f"a clustered index needs a vector column; {column!r} is {spec.kind.value}")


@dataclass(frozen=True)
class PartitionWrite:
    """What replacing one partition did."""

    table: str
    partition: str
    rows_written: int
    rows_replaced: int
    version: str
    rows_already_present: int = 0


class PartitionShrinkError(ValueError):
    """A replace that would store fewer rows than the partition holds, where the caller forbade that."""

    def __init__(self, table: str, partition: str, stored: int, new: int):
        super().__init__(f"table {table!r}: partition {partition!r} holds {stored} row(s); this write has only {new}")
        self.table, self.partition, self.stored, self.new = table, partition, stored, new


class Table(ABC):
    """A keyed, partitioned table with vector search, indexes and version tags."""

    def __init__(self, schema: TableSchema):
        self.schema = schema

    @abstractmethod
    def replace_partition(self, partition: str, rows: list[dict[str, Any]], message: str,
                          shrink_allowed: bool = True) -> PartitionWrite:
        """Atomically swap the partition's rows for `rows` (validated first; keys unique in the table).

        With `shrink_allowed=False` a write of fewer rows than the partition holds now raises
        `PartitionShrinkError` and leaves the stored rows as they are."""

    @abstractmethod
    def append(self, partition: str, rows: list[dict[str, Any]], message: str, skip_existing: bool = False) -> PartitionWrite:
        """Add rows to a partition in one commit (validated first). Every key must be new to the table;
        a failed append leaves the table as it was. With `skip_existing`, rows whose keys this partition
        already holds are left out (decided under the write lock, so two appenders never duplicate a key)."""

    @abstractmethod
    def upsert(self, partition: str, rows: list[dict[str, Any]], message: str) -> PartitionWrite:
        """Write rows into a partition in one commit (validated first): a row whose key the partition
        holds replaces it, the others are added. A key held by another partition fails the whole write
        and leaves the table as it was. `rows_replaced` counts the rows overwritten."""

    @abstractmethod
    def delete_rows(self, partition: str, row_keys: list[str], message: str) -> int:
        """Delete the partition's rows with these keys in one commit; keys it does not hold are ignored
        (no commit when none is held). Returns how many rows were deleted."""

    @abstractmethod
    def partitions_of(self, row_keys: list[str]) -> dict[str, str]:
        """The partition that holds each of `row_keys`; keys not stored are absent."""

    @abstractmethod
    def row_keys(self, partition: str) -> set[str]:
        """The keys stored in a partition (what an append-only writer checks to resume)."""

    @abstractmethod
    def read_partition(self, partition: str, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The partition's rows in row-key order, with `columns` (all when empty)."""

    @abstractmethod
    def read_where(self, where: Filter | None, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Rows matching a parsed filter (all rows when None), in row-key order."""

    @abstractmethod
    def partition_counts(self) -> dict[str, int]:
        """Row count per partition."""

    @abstractmethod
    def read_rows(self, row_keys: list[str], columns: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        """Rows by key; missing keys are absent from the result."""

    @abstractmethod
    def search(self, search: VectorSearch) -> list[Hit]:
        """Top-k rows by similarity, optionally filtered."""

    @abstractmethod
    def keyword_search(self, search: KeywordSearch) -> list[Hit]:
        """Top-k rows by BM25 on a bm25-indexed text column (hits carry no score)."""

    @abstractmethod
    def create_index(self, column: str, kind: str) -> bool:
        """Make sure `column` has an index of `kind` covering every row; True when it was created now."""

    @abstractmethod
    def indexes(self) -> dict[str, str]:
        """Indexed columns and their index kinds."""

    def describe_search(self, column: str, mode: str = "vector", wait: bool = True) -> str:
        """How a search of `column` is answered, and the recall it delivers, for logs and metadata; with
        `wait`, once search structures still being built are done."""
        return f"the engine's index on {column} (recall as the engine delivers it)"

    @abstractmethod
    def explain(self, search: VectorSearch) -> str:
        """The engine's plan for a search, to confirm it uses an index."""

    @abstractmethod
    def tag_version(self, tag: str) -> str:
        """Pin the current version under `tag` (idempotent for the same version); returns the version id."""

    @abstractmethod
    def open_tag(self, tag: str) -> Table:
        """A read-only view of the table as it was when `tag` was made."""

    @property
    @abstractmethod
    def version(self) -> str:
        """The current committed version id."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the table lives, as a URL (shown in the UI as `dagster/uri`)."""

    @abstractmethod
    def __len__(self) -> int:
        """Total number of rows."""

    def refresh(self) -> None:
        """See commits other processes made since the table was opened (a long-lived reader calls this)."""


class Lake(ABC):
    """Opens tables by schema; the backend decides where and how they live."""

    @abstractmethod
    def table(self, schema: TableSchema) -> Table:
        """Open the table, creating it (or adding new columns) to match `schema`."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether a table of that name exists."""

    @abstractmethod
    def table_names(self) -> list[str]:
        """Every table in the lake, sorted."""

    @abstractmethod
    def drop(self, name: str) -> bool:
        """Delete a table and its history; False when there was none. Only cleanup calls this."""


def require_table(lake: Lake, schema: TableSchema, missing_hint: str) -> Table:
    """Open a table that must already exist (never create it); `LookupError` with `missing_hint` when it does not."""
    if not lake.exists(schema.name):
        raise LookupError(f"table {schema.name} does not exist yet: {missing_hint}")
    return lake.table(schema)
