"""Row and vector validation that runs before anything reaches a storage engine.

Deep Lake silently accepts NaN/Inf, None, ragged arrays and non-JSON dicts, so every write goes
through here first; an error names the table, row key and column.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from dlk_assets.lake.schema import PARTITION, ROW_KEY, Column, Kind, TableSchema


class RowValidationError(ValueError):
    """A row that must not be written; the message names the table, row and column."""


def validate_vector(value: Any, dim: int, *, multi: bool, where: str) -> np.ndarray:
    """Return `value` as float32 of the expected shape, or raise naming `where`."""
    if value is None:
        raise RowValidationError(f"{where}: vector is None")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise RowValidationError(f"{where}: not a numeric array ({exc})") from exc
    expected_ndim = 2 if multi else 1
    if array.ndim != expected_ndim:
        shape = "(tokens, dim)" if multi else "(dim,)"
        raise RowValidationError(f"{where}: expected shape {shape}, got {array.shape}")
    if array.shape[-1] != dim:
        raise RowValidationError(f"{where}: dimension {array.shape[-1]} does not match the column's {dim}")
    if multi and array.shape[0] == 0:
        raise RowValidationError(f"{where}: multi-vector has no rows")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise RowValidationError(f"{where}: {bad} non-finite value(s) (NaN or Inf)")
    return np.ascontiguousarray(array)


def _validate_value(column: Column, value: Any, where: str) -> Any:
    if column.is_vector:
        return validate_vector(value, column.dim, multi=column.kind is Kind.MULTI_VECTOR, where=where)
    if value is None:
        raise RowValidationError(f"{where}: value is None")
    if column.kind is Kind.TEXT:
        if not isinstance(value, str):
            raise RowValidationError(f"{where}: expected text, got {type(value).__name__}")
        return value
    if column.kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise RowValidationError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if column.kind is Kind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(float(value)):
            raise RowValidationError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if column.kind is Kind.JSON:
        if not isinstance(value, dict):
            raise RowValidationError(f"{where}: expected a JSON object, got {type(value).__name__}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise RowValidationError(f"{where}: not JSON-serialisable ({exc})") from exc
        return value
    if column.kind is Kind.INT_LIST:
        array = np.asarray(value)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise RowValidationError(f"{where}: expected a flat list of integers, got {value!r}")
        return array.astype(np.int64)
    if column.kind is Kind.BOXES:
        array = np.asarray(value, dtype=np.float32).reshape(-1, 4) if len(value) else np.zeros((0, 4), np.float32)
        if not np.isfinite(array).all() or (array[:, 2:] < 0).any():
            raise RowValidationError(f"{where}: boxes must be finite [x, y, w, h] with w, h >= 0, got {value!r}")
        return array
    raise RowValidationError(f"{where}: unknown column kind {column.kind}")


def _validate_block(column: Column, values: list[Any]) -> list[Any] | None:
    """Fast path: check a whole column at once.

    Returns None when the block does not pass as a whole, so the caller checks row by row and
    names the offending row.
    """
    if column.is_vector:
        return _validate_vector_block(column, values)
    if column.kind is Kind.TEXT and all(type(v) is str for v in values):
        return values
    if column.kind is Kind.INT and all(type(v) is int for v in values):
        return values
    if column.kind is Kind.JSON and all(type(v) is dict for v in values):
        try:
            json.dumps(values, allow_nan=False)
        except (TypeError, ValueError):
            return None
        return values
    return None


def _validate_vector_block(column: Column, values: list[Any]) -> list[np.ndarray] | None:
    try:
        block = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    expected_ndim = 3 if column.kind is Kind.MULTI_VECTOR else 2
    if block.ndim != expected_ndim or block.shape[-1] != column.dim or (expected_ndim == 3 and block.shape[1] == 0):
        return None
    # NaN/Inf anywhere make the sum non-finite; a finite sum proves the block clean without a full
    # boolean mask. (A sum that overflows only sends us to the exact row-by-row check.)
    if not math.isfinite(float(block.sum(dtype=np.float64))):
        return None
    return block  # one contiguous array: Deep Lake appends it faster than a list of rows


def _row_label(schema: TableSchema, partition: str, index: int, key: Any) -> str:
    where = f"row {key!r}" if isinstance(key, str) and key else f"row #{index}"
    return f"table {schema.name!r}, partition {partition!r}, {where}"


def validate_rows(schema: TableSchema, rows: list[dict[str, Any]], partition: str) -> dict[str, list[Any]]:
    """Check every row against `schema` and return columnar data ready for a backend.

    All rows are checked before any is returned, so a bad row never leaves half a partition behind.
    Columns are checked as whole blocks first; only a failing column is rechecked row by row, so
    the error can name the row.
    """
    expected = set(schema.column_names) - {PARTITION}
    expected_with_partition = expected | {PARTITION}
    seen_keys: set[str] = set()
    for index, row in enumerate(rows):
        key = row.get(ROW_KEY)
        keys = row.keys()
        if not isinstance(key, str) or not key or key in seen_keys or (keys != expected and keys != expected_with_partition) \
                or row.get(PARTITION, partition) != partition:
            label = _row_label(schema, partition, index, key)
            if not isinstance(key, str) or not key:
                raise RowValidationError(f"{label}: missing {ROW_KEY}")
            if key in seen_keys:
                raise RowValidationError(f"{label}: duplicate {ROW_KEY} in one write")
            missing, extra = expected - keys, keys - expected_with_partition
            if missing:
                raise RowValidationError(f"{label}: missing column(s) {sorted(missing)}")
            if extra:
                raise RowValidationError(f"{label}: unknown column(s) {sorted(extra)}")
            raise RowValidationError(f"{label}: belongs to partition {row[PARTITION]!r}, not {partition!r}")
        seen_keys.add(key)
    columns: dict[str, list[Any]] = {PARTITION: [partition] * len(rows)}
    for column in schema.all_columns:
        if column.name == PARTITION:
            continue
        values = [row[column.name] for row in rows]
        block = _validate_block(column, values) if rows else None
        if block is None:
            block = [
                _validate_value(column, value, f"{_row_label(schema, partition, i, row[ROW_KEY])}, column {column.name!r}")
                for i, (value, row) in enumerate(zip(values, rows))
            ]
        columns[column.name] = block
    return columns
