"""The seed's metadata filter language, compiled to the project's filter tree (and from there to TQL or
the Deep Lake PG dialect by the backends' own compilers).

    {"tenant_id": "t1"}                      equality (a record field, or else a metadata key)
    {"tags": {"$in": ["ml", "nlp"]}}         the value is one of these, or an array holding one of them
    {"page_number": {"$gte": 5}}             $eq $ne $gt $gte $lt $lte
    {"$and": [...]}, {"$or": [...]}          several keys in one object are ANDed too

Values are strings or numbers. A comparison on a record field never matches a record that lacks the
field (a record without `chunk_index` is neither `< 2` nor `!= 2`), as SQL treats NULL: absent optional
fields are stored as "" and -1 in typed columns, and the compiled filter says "present" beside each
comparison. Every refusal is an `INVALID_FILTER` error naming the bad part by its path, e.g.
`filters.$and[1].$or[0].author`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from dlk_assets.retrieval.filters import (
    MAX_ABS_INTEGER,
    MAX_COMPARISONS,
    MAX_DEPTH,
    BoolOp,
    Comparison,
    Filter,
)
from dlk_assets.vectors.errors import VectorServiceError
from dlk_assets.vectors.schema import RECORD_FIELDS, TENANT

# Record fields a filter may name directly; anything else is a key of `metadata`.
RECORD_FILTER_FIELDS = frozenset(name for name in (*RECORD_FIELDS, TENANT) if name not in ("metadata", "content"))
COMPARISONS = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
MAX_IN_VALUES = 32
INTEGER_FIELDS = ("chunk_index", "chunk_count")
# Record fields a record may leave out: stored as "" (text) or ABSENT_INT (integers).
OPTIONAL_TEXT_FIELDS = ("chunk_id", "content_hash", "content_type", "language", "model")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")


def _invalid(path: str, message: str) -> VectorServiceError:
    return VectorServiceError("INVALID_FILTER", f"{path}: {message}", {"path": path})


class _Compiler:
    def __init__(self):
        self.comparisons = 0

    def node(self, value: Any, path: str, depth: int) -> Filter | None:
        if depth > MAX_DEPTH:
            raise _invalid(path, f"filters nest deeper than {MAX_DEPTH} levels")
        if not isinstance(value, dict):
            raise _invalid(path, f"expected an object, got {type(value).__name__}")
        parts = [part for key, item in value.items() if (part := self.entry(key, item, f"{path}.{key}", depth)) is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def entry(self, key: str, value: Any, path: str, depth: int) -> Filter | None:
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _invalid(path, f"{key} takes a non-empty list of filters")
            operands = [self.node(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
            kept = tuple(operand for operand in operands if operand is not None)
            if key == "$or" and len(kept) < len(operands):
                raise _invalid(path, "an empty filter inside $or would match everything; remove it")
            if not kept:
                return None
            return kept[0] if len(kept) == 1 else BoolOp(key[1:].upper(), kept)
        if key.startswith("$"):
            raise _invalid(path, f"unknown operator {key!r} here; use $and or $or, or a field name")
        field, metadata_key = self.field(key, path)
        if isinstance(value, dict):
            return self.operators(field, metadata_key, value, path)
        return self.compare(field, metadata_key, "==", value, path)

    def field(self, name: str, path: str) -> tuple[str, str | None]:
        if name.startswith("metadata."):
            name = name.removeprefix("metadata.")
        elif name in RECORD_FILTER_FIELDS:
            return name, None
        if not _KEY.fullmatch(name):
            raise _invalid(path, "a metadata key is 1-128 letters, digits, _ or -, starting with a letter or _")
        return "metadata", name

    def operators(self, field: str, key: str | None, spec: dict[str, Any], path: str) -> Filter:
        if not spec:
            raise _invalid(path, "an empty operator object; use a value or {\"$eq\": value}")
        parts = []
        for operator, value in spec.items():
            where = f"{path}.{operator}"
            if operator in COMPARISONS:
                parts.append(self.compare(field, key, COMPARISONS[operator], value, where))
            elif operator == "$in":
                parts.append(self.one_of(field, key, value, where))
            else:
                raise _invalid(where, f"unknown operator; use one of {', '.join([*COMPARISONS, '$in'])}")
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def one_of(self, field: str, key: str | None, values: Any, path: str) -> Filter:
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_IN_VALUES:
            raise _invalid(path, f"$in takes a list of 1 to {MAX_IN_VALUES} values")
        options: list[Filter] = []
        for i, value in enumerate(values):
            options.append(self.compare(field, key, "==", value, f"{path}[{i}]"))
            if key is not None:  # a metadata array holding the value matches too
                options.append(Comparison(field, "HAS", value, key))
        return options[0] if len(options) == 1 else BoolOp("OR", tuple(options))

    def compare(self, field: str, key: str | None, op: str, value: Any, path: str) -> Filter:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise _invalid(path, f"filters make more than {MAX_COMPARISONS} comparisons")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _invalid(path, f"compare with a string or a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(path, "numbers must be finite")
        if isinstance(value, (int, float)) and abs(value) > MAX_ABS_INTEGER:
            raise _invalid(path, f"numbers must be at most {MAX_ABS_INTEGER} in magnitude")
        if isinstance(value, str) and ("\x00" in value or len(value) > 1024):
            raise _invalid(path, "strings must be at most 1024 characters, without NUL")
        if key is None and (field in INTEGER_FIELDS) != (not isinstance(value, str)):
            kind = "a number" if field in INTEGER_FIELDS else "a string"
            raise _invalid(path, f"{field} is compared with {kind}")
        comparison = Comparison(field, op, value, key)
        if key is None and field in INTEGER_FIELDS:
            return BoolOp("AND", (Comparison(field, ">=", 0), comparison))
        if key is None and field in OPTIONAL_TEXT_FIELDS:
            if value == "":
                raise _invalid(path, f"compare {field} with a non-empty string (records without one never match)")
            return BoolOp("AND", (Comparison(field, "!=", ""), comparison))
        return comparison


def compile_metadata_filter(filters: dict[str, Any] | None) -> Filter | None:
    """The filter tree for a seed-style filter object (None for no filter or `{}`)."""
    if filters is None:
        return None
    return _Compiler().node(filters, "filters", 0)


def scoped(tenant: str, tree: Filter | None) -> Filter:
    """`tenant_id == tenant AND (tree)`: the caller's tenant is ANDed outside whatever the client asked for."""
    own = Comparison(TENANT, "==", tenant)
    return own if tree is None else BoolOp("AND", (own, tree))
