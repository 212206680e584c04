"""Compile searches and filters to Deep Lake TQL.

Query vectors go in as ARRAY[...] literals (a parameterised TQL query took seconds per call);
strings are quoted with doubled single quotes, and every field is checked against the schema.
"""

from __future__ import annotations

import math

import numpy as np

from dlk_assets.lake.schema import ROW_KEY, Kind, TableSchema
from dlk_assets.retrieval.filter_columns import filtered_column
from dlk_assets.retrieval.filters import BoolOp, Filter
from dlk_assets.retrieval.requests import KeywordSearch, VectorSearch


def quote_text(value: str) -> str:
    """A TQL string literal (TQL has no backslash escapes; a quote is escaped by doubling it)."""
    if "\x00" in value:
        raise ValueError("text contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted column name: some column names (`date`, ...) are TQL keywords. Names come from schemas."""
    if '"' in name:
        raise ValueError(f"column name {name!r} contains a double quote")
    return f'"{name}"'


def _literal(value: str | float) -> str:
    if isinstance(value, str):
        return quote_text(value)
    if not math.isfinite(value):
        raise ValueError(f"filter value must be finite, got {value!r}")
    return repr(value)


def array_literal(vectors: np.ndarray) -> str:
    """ARRAY[...] (1-D) or ARRAY[ARRAY[...], ...] (2-D) with float32-exact values."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise ValueError("query vector has non-finite values")
    # Nine significant digits give back every float32 exactly, in ~40% less text than repr() of the
    # widened double, which Deep Lake then parses faster too.
    row_format = ",".join(["%.9g"] * vectors.shape[-1])
    if vectors.ndim == 1:
        return "ARRAY[" + row_format % tuple(vectors.tolist()) + "]"
    return "ARRAY[" + ",".join("ARRAY[" + row_format % tuple(row) + "]" for row in vectors.tolist()) + "]"


def compile_filter(tree: Filter, schema: TableSchema) -> str:
    """TQL boolean expression for a parsed filter, checked against the table's columns."""
    if isinstance(tree, BoolOp):
        return "(" + f" {tree.op} ".join(compile_filter(operand, schema) for operand in tree.operands) + ")"
    column = filtered_column(tree, schema)
    target = identifier(column.name)
    if tree.key is not None:
        target = f"{target}[{quote_text(tree.key)}]"
    if tree.op == "CONTAINS":
        return f"CONTAINS({target}, {_literal(tree.value)})"
    if tree.op == "HAS":
        # CONTAINS tests membership in a JSON array but is a substring test on a JSON string; every
        # string contains '' and no array of non-empty values does, which tells the two apart.
        return f"(CONTAINS({target}, {_literal(tree.value)}) AND NOT CONTAINS({target}, ''))"
    return f"{target} {tree.op} {_literal(tree.value)}"


def similarity_expression(search: VectorSearch) -> str:
    """The scoring expression: MAXSIM for multi-vectors, COSINE_SIMILARITY for vectors."""
    function = "MAXSIM" if search.mode == "maxsim" else "COSINE_SIMILARITY"
    return f"{function}({identifier(search.column)}, {array_literal(search.query)})"


def check_search(search: VectorSearch, schema: TableSchema) -> None:
    """Refuse a search whose column kind, query shape or selected columns do not fit the table."""
    column = schema.column(search.column)
    expected = Kind.MULTI_VECTOR if search.mode == "maxsim" else Kind.VECTOR
    if column.kind is not expected:
        raise ValueError(f"{search.mode} search needs a {expected.value} column; {column.name!r} is {column.kind.value}")
    query = np.asarray(search.query)
    if query.shape[-1] != column.dim or query.ndim != (2 if search.mode == "maxsim" else 1):
        raise ValueError(f"query shape {query.shape} does not fit column {column.name!r} (dim {column.dim})")
    if not np.isfinite(query).all():
        raise ValueError("query vector has non-finite values")
    for name in search.select:
        schema.column(name)


def compile_search(search: VectorSearch, schema: TableSchema) -> str:
    """A full TQL query: selected columns and score, optional filter, top-k by score."""
    check_search(search, schema)
    columns = [ROW_KEY, *(name for name in search.select if name != ROW_KEY)]
    score = similarity_expression(search)
    where = f" WHERE {compile_filter(search.where, schema)}" if search.where is not None else ""
    # An alias in ORDER BY fails in TQL 4.7: repeat the expression.
    selected = ", ".join(map(identifier, columns)) + (f", {score} AS score" if search.with_scores else "")
    return f"SELECT {selected}{where} ORDER BY {score} DESC LIMIT {int(search.k)}"


def compile_keyword_search(search: KeywordSearch, schema: TableSchema) -> str:
    """Top-k rows by BM25. Deep Lake only allows BM25 in ORDER BY, so the query has no score column."""
    column = schema.column(search.column)
    if column.kind is not Kind.TEXT:
        raise ValueError(f"keyword search needs a text column; {column.name!r} is {column.kind.value}")
    columns = [ROW_KEY, *(name for name in search.select if name != ROW_KEY)]
    for name in columns:
        schema.column(name)
    where = f" WHERE {compile_filter(search.where, schema)}" if search.where is not None else ""
    return (f"SELECT {', '.join(map(identifier, columns))}{where} ORDER BY BM25_SIMILARITY({identifier(column.name)}, "
            f"{quote_text(search.text)}) DESC LIMIT {int(search.k)}")
