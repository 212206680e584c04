"""Backend-neutral table schemas: what a column holds, not how an engine stores it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

ROW_KEY = "row_key"
PARTITION = "partition"
# One name per meaning in every table: the Dagster run that wrote a row, and the encoder behind a vector
# (never `model`, which a trace uses for its LLM).
DAGSTER_RUN_ID = "dagster_run_id"
ENCODER_FINGERPRINT = "encoder_fingerprint"


class UnknownColumnError(ValueError):
    """A column name the table does not have."""


class Kind(str, Enum):
    """Column kinds every backend can store."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    JSON = "json"  # a JSON object (dict)
    INT_LIST = "int_list"  # variable-length list of ints
    BOXES = "boxes"  # (n, 4) float boxes, n may be 0
    VECTOR = "vector"  # one float32 vector of `dim`
    MULTI_VECTOR = "multi_vector"  # (tokens, dim) float32, tokens >= 1


@dataclass(frozen=True)
class Column:
    """One column: name, kind and, for vectors, the dimension every row must have."""

    name: str
    kind: Kind
    dim: int | None = None

    def __post_init__(self):
        if self.kind in (Kind.VECTOR, Kind.MULTI_VECTOR) and not self.dim:
            raise ValueError(f"vector column {self.name!r} needs a dimension")

    @property
    def is_vector(self) -> bool:
        return self.kind in (Kind.VECTOR, Kind.MULTI_VECTOR)


@dataclass(frozen=True)
class TableSchema:
    """A table: its name and columns. Every table has a deterministic row key and a partition column."""

    name: str
    columns: tuple[Column, ...]

    def __post_init__(self):
        names = [c.name for c in self.all_columns]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"table {self.name!r} declares columns twice: {sorted(duplicates)}")

    @cached_property
    def all_columns(self) -> tuple[Column, ...]:
        return (Column(ROW_KEY, Kind.TEXT), Column(PARTITION, Kind.TEXT), *self.columns)

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.all_columns)

    def column(self, name: str) -> Column:
        for column in self.all_columns:
            if column.name == name:
                return column
        raise UnknownColumnError(f"table {self.name!r} has no column {name!r} (columns: {', '.join(self.column_names)})")


def lineage_columns() -> tuple[Column, ...]:
    """The columns every row carries besides its key and partition: where it came from and which run wrote it."""
    return (Column("source", Kind.TEXT), Column(DAGSTER_RUN_ID, Kind.TEXT))


def model_slug(fingerprint: str) -> str:
    """A table-name-safe form of an encoder fingerprint (tables are per model)."""
    return re.sub(r"[^a-z0-9]+", "-", fingerprint.lower()).strip("-")
