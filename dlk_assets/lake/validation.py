"""Row and vector validation that runs before anything reaches a storage engine.

Deep Lake silently accepts NaN/Inf, None, ragged arrays and non-JSON dicts, so every write goes
through here first; an error names the table, row key and column.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import numpy as np

from dlk_assets.lake.json_text import compact_json
from dlk_assets.lake.schema import PARTITION, ROW_KEY, Column, Kind, TableSchema

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


class RowValidationError(ValueError):
    """A row that must not be written; the message names the table, row and column."""


def _json_text(value: Any, where: str) -> str:
    """`value` (a dict) as compact JSON text, or raise naming `where`."""
    if not isinstance(value, dict):
        raise RowValidationError(f"{where}: expected a JSON object, got {type(value).__name__}")
    try:
        return compact_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise RowValidationError(f"{where}: not JSON-serialisable ({exc})") from exc


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
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise RowValidationError(f"{where}: {value} does not fit a 64-bit integer column")
        return int(value)
    if column.kind is Kind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(float(value)):
            raise RowValidationError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if column.kind is Kind.JSON:
        return _json_text(value, where)
    if column.kind is Kind.INT_LIST:
        items_are_ints = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and _INT64_MIN <= v <= _INT64_MAX for v in value)
        is_int_array = isinstance(value, np.ndarray) and value.ndim == 1 and np.issubdtype(value.dtype, np.signedinteger)
        if not (items_are_ints or is_int_array):
            raise RowValidationError(f"{where}: expected a flat list of 64-bit integers, got {value!r}")
        return np.asarray(value, dtype=np.int64)
    if column.kind is Kind.BOXES:
        array = np.asarray(value, dtype=np.float32).reshape(-1, 4) if len(value) else np.zeros((0, 4), np.float32)
        if not np.isfinite(array).all() or (array[:, 2:] < 0).any():
            raise RowValidationError(f"{where}: boxes must be finite [x, y, w, h] with w, h >= 0, got {value!r}")
        return array
    raise RowValidationError(f"{where}: unknown column kind {column.kind}")


def _validate_block(column: Column, values: list[Any]) -> list[Any] | np.ndarray | None:
    """Fast path: check a whole column at once.

    Returns None when the block does not pass as a whole, so the caller checks row by row and
    names the offending row.
    """
    if column.is_vector:
        return _validate_vector_block(column, values)
    if column.kind is Kind.TEXT and all(type(v) is str for v in values):
        return values
    if column.kind is Kind.INT and all(type(v) is int for v in values):
        try:
            return np.asarray(values, dtype=np.int64)  # an int64 array appends ~5x faster than a list
        except OverflowError:
            return None
    if column.kind is Kind.INT_LIST:
        return _validate_int_list_block(values)
    if column.kind is Kind.JSON and all(type(v) is dict for v in values):
        try:
            return list(map(compact_json, values))  # the engine takes JSON text (see lake/json_text.py)
        except (TypeError, ValueError, RecursionError):
            return None
    return None


def _all_finite(block: np.ndarray) -> bool:
    # NaN/Inf anywhere make the float32 sum non-finite, so a finite sum proves the block clean, ~20%
    # faster than a boolean mask. (A sum that overflows only sends us to the exact row-by-row check.)
    return math.isfinite(float(block.sum()))


def _float32_block(values: Any) -> np.ndarray | None:
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        return None


def _validate_vector_block(column: Column, values: list[Any]) -> np.ndarray | list[np.ndarray] | None:
    if column.kind is Kind.MULTI_VECTOR:
        return _validate_multi_vector_block(column, values)
    block = _float32_block(values)
    if block is None or block.ndim != 2 or block.shape[1] != column.dim or not _all_finite(block):
        return None
    return block  # one contiguous array: Deep Lake appends it faster than a list of rows


def _validate_multi_vector_block(column: Column, values: list[Any]) -> np.ndarray | list[np.ndarray] | None:
    try:
        token_counts = [len(value) for value in values]
    except TypeError:
        return None
    if min(token_counts) == 0:
        return None
    if len(set(token_counts)) == 1:
        block = _float32_block(values)
        if block is None or block.ndim != 3 or block.shape[2] != column.dim or not _all_finite(block):
            return None
        return block  # one (rows, tokens, dim) array appends faster than a list of rows
    # Ragged bags: check every token as one (all tokens, dim) array, then hand out views of it.
    try:
        tokens = np.concatenate(values, axis=0, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if tokens.ndim != 2 or tokens.shape[1] != column.dim or not _all_finite(tokens):
        return None
    return _split(tokens, token_counts)


def _split(flat: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    """Consecutive views of `flat`, one per count: one copy checked at once, no copy per row."""
    ends = np.cumsum(counts).tolist()
    return [flat[end - count:end] for end, count in zip(ends, counts)]


def _validate_int_list_block(values: list[Any]) -> list[np.ndarray] | None:
    if all(type(value) is list for value in values):
        flat = list(chain.from_iterable(values))
        if not all(type(item) is int for item in flat):
            return None
    elif all(isinstance(v, np.ndarray) and v.ndim == 1 and np.issubdtype(v.dtype, np.signedinteger) for v in values):
        flat = np.concatenate(values)
    else:
        return None
    try:
        integers = np.asarray(flat, dtype=np.int64)  # int64 arrays append ~4x faster than lists of ints
    except OverflowError:
        return None
    return _split(integers, [len(value) for value in values])


def _row_label(schema: TableSchema, partition: str, index: int, key: Any) -> str:
    where = f"row {key!r}" if isinstance(key, str) and key else f"row #{index}"
    return f"table {schema.name!r}, partition {partition!r}, {where}"


def validate_rows(schema: TableSchema, rows: list[dict[str, Any]], partition: str) -> dict[str, Any]:
    """Check every row against `schema` and return columnar data ready for a backend.

    Values come back in the form engines ingest fastest: JSON objects as compact JSON text, integers
    as int64 arrays, vectors as float32 blocks (or views of one block when bags are ragged).
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
