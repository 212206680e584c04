"""SQL for a Deep Lake PG (pg_deeplake) table backend: pure statement builders, no connection.

Every builder returns `Statement(sql, params)` (or a list of them) for psycopg 3:
- text and scalars are always bound `%s` parameters, never spliced into the SQL text;
- vectors go inline as `ARRAY[…]::float4[]` / `ARRAY[ARRAY[…],…]::float4[][]` literals with
  float32-exact values (array parameters reach pg_deeplake's DuckDB path as VARCHAR and fail);
- identifiers are double-quoted; a NUL or a `%` in one is refused (a `%` would turn into a psycopg
  placeholder), and so is a name PostgreSQL would silently truncate.
- `LIMIT` is an inlined, validated integer: pg_deeplake reads the limit off the plan as a constant
  (cpp/deeplake_pg/extension_init.cpp), so a bound `LIMIT $1` would be misread under a generic plan.

Run every statement with its params tuple, even an empty one. Prefer `psycopg.ClientCursor`
(client-side binding) against pg_deeplake: a plain SELECT there is executed by its DuckDB path from
the raw query text (cpp/deeplake_pg/deeplake_executor.cpp), and nothing in that source hands it
server-side `$n` values; queries with `<#>` stay on the PostgreSQL executor.

The statement forms follow pg_deeplake's own tests (activeloopai/deeplake, postgres/tests/py_tests,
Apache-2.0); dlk_assets_tests/test_pg_sql.py pins each one and names the test it comes from.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from deeplake.managed import normalize_index_type as managed_index_type

from dlk_assets.lake.schema import PARTITION, ROW_KEY, Column, Kind, TableSchema
from dlk_assets.lake.validation import validate_rows
from dlk_assets.retrieval.filter_columns import filtered_column
from dlk_assets.retrieval.filters import BoolOp, Filter
from dlk_assets.retrieval.requests import (
    KeywordSearch,
    VectorSearch,
    check_k,
    check_query_text,
)

PG_TYPES: dict[Kind, str] = {
    Kind.TEXT: "TEXT",
    Kind.INT: "BIGINT",
    Kind.FLOAT: "REAL",  # float32, as the local backend stores it
    Kind.JSON: "JSONB",
    Kind.INT_LIST: "BIGINT[]",
    Kind.BOXES: "FLOAT4[][]",
    Kind.VECTOR: "FLOAT4[]",
    Kind.MULTI_VECTOR: "FLOAT4[][]",
}

# Index types pg_deeplake accepts per column kind (cpp/deeplake_pg/pg_deeplake.cpp). Its own default
# for a text column has changed between releases (the source says bm25, the managed SDK says
# exact_text), so every index here names its type.
INDEX_TYPES_BY_KIND: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: ("bm25", "inverted", "exact_text"),
    Kind.VECTOR: ("clustered", "clustered_quantized"),
    Kind.MULTI_VECTOR: ("pooled_quantized",),
    Kind.INT: ("inverted",),
    Kind.FLOAT: ("inverted",),
    Kind.JSON: ("inverted",),
}
# What pg_deeplake's catalog (pg_deeplake_metadata.index_type) calls the type this module writes.
INDEX_TYPE_ALIASES = {"inverted_index": "inverted"}
# Ranking indexes carry the direction their index scan returns rows in.
_RANKING_INDEX_TYPES = ("bm25", "clustered", "clustered_quantized", "pooled_quantized")

SCORE_ALIAS = "score"
# `<#>` yields a similarity in pg_deeplake and in the embedded engine's Postgres dialect (cosine 1.0
# for the same direction, larger BM25 for a better match), so best-first by the value is DESC. But
# PostgreSQL matches an index's ordering operator to ascending ORDER BY only: pg_deeplake's tests write
# a bare `ORDER BY score` and assert an index scan, served by the `(col DESC)` deeplake_index in its
# own best-first order (its cost hook forces that path whenever it applies: index_search.cpp,
# `pg_costestimate`; tests/sql/hybrid_search.sql and py_tests/test_order_check.py pin both forms). So
# an unfiltered search of a column with a ranking index gets the bare form (INDEX_ORDER: an index-ordered
# scan, no sort), and any other search DESC (SCORE_ORDER: a sort over computed scores, right on every
# plan; no pg_deeplake test pins a WHERE clause with the bare form, so a filtered search never takes it).
SCORE_ORDER = "DESC"
INDEX_ORDER = ""

MAX_PARAMS = 65_535  # bind parameters one PostgreSQL statement can carry
MAX_NAME_BYTES = 63  # longer PostgreSQL names are truncated without an error
ROWS_PER_INSERT = 256

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Reserved and type/function-name keywords (PostgreSQL appendix C): never usable as a bare name.
_RESERVED = frozenset((
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary",
    "both", "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint",
    "create", "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end",
    "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading",
    "left", "like", "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset",
    "on", "only", "or", "order", "outer", "overlaps", "placing", "primary", "references", "returning",
    "right", "select", "session_user", "similar", "some", "symmetric", "system_user", "table", "tablesample",
    "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "verbose", "when",
    "where", "window", "with",
))

_OPERATORS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class Statement(NamedTuple):
    """One SQL statement with `%s` placeholders and the values bound to them, in order."""

    sql: str
    params: tuple[Any, ...] = ()


class IndexExistsError(ValueError):
    """A column that already carries a deeplake_index: pg_deeplake allows one index per column."""


@dataclass(frozen=True)
class PgTable:
    """A table schema and where it lives: `"<workspace>"."<name>"` (a workspace is a PG schema).

    `name` defaults to the schema's name; the tests pass a `file://` dataset URL instead, which the
    embedded engine's Postgres dialect takes as the table in FROM.
    """

    schema: TableSchema
    workspace: str | None = None
    name: str | None = None

    @property
    def table_name(self) -> str:
        return self.name or self.schema.name

    @property
    def relation(self) -> str:
        """The schema-qualified, quoted table reference."""
        table = quote_identifier(self.table_name)
        return f"{quote_identifier(self.workspace)}.{table}" if self.workspace else table

    @property
    def catalog_name(self) -> str:
        """The name pg_deeplake's catalog tables key this table by: `<schema>.<table>`."""
        return f"{self.workspace or 'public'}.{self.table_name}"


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (embedded quotes doubled); NUL, `%` and empty names refused."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an SQL identifier must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL character")
    if "%" in name:
        # psycopg reads `%` in the SQL text as the start of a placeholder.
        raise ValueError(f"identifier {name!r} contains '%', which psycopg would read as a placeholder")
    return '"' + name.replace('"', '""') + '"'


def _pg_name(name: str, what: str) -> str:
    """A name PostgreSQL stores as given (not truncated), quoted."""
    quoted = quote_identifier(name)
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"{what} {name!r} is longer than {MAX_NAME_BYTES} bytes; PostgreSQL would truncate it")
    return quoted


def _operand(name: str) -> str:
    """A column on the left of `<#>`, written bare as pg_deeplake's tests do.

    The embedded engine's Postgres dialect fails to parse a quoted name there (`"emb" <#> …`), and
    a bare lower-case, non-reserved name means the same column in PostgreSQL as its quoted form.
    """
    if not _PLAIN_NAME.fullmatch(name) or name in _RESERVED:
        raise ValueError(f"column {name!r} cannot be searched with <#>: it must be a plain lower-case, "
                         "non-reserved SQL name")
    return name


def pg_type(column: Column) -> str:
    """The PostgreSQL type of a column kind."""
    return PG_TYPES[column.kind]


def _float32_text(values: np.ndarray) -> str:
    # str() of a numpy float32 is the shortest decimal that reads back as the same float32.
    return ",".join(map(str, values))


def vector_literal(values: Any, column: str) -> str:
    """`ARRAY[…]::float4[]` (1-D) or `ARRAY[ARRAY[…],…]::float4[][]` (2-D), float32-exact.

    Refuses NaN/Inf (they have no SQL literal form) and empty vectors, naming `column`.
    """
    array = np.asarray(values, dtype=np.float32)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"column {column!r}: expected a non-empty 1-D or 2-D vector, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"column {column!r}: vector has {bad} non-finite value(s) (NaN or Inf); "
                         "they have no SQL literal form")
    if array.ndim == 1:
        return f"ARRAY[{_float32_text(array)}]::float4[]"
    return "ARRAY[" + ",".join(f"ARRAY[{_float32_text(row)}]" for row in array) + "]::float4[][]"


def _boxes_literal(boxes: np.ndarray, column: str) -> str:
    return "ARRAY[]::float4[][]" if len(boxes) == 0 else vector_literal(boxes, column)


def _int_list_literal(values: Any) -> str:
    # int() of every item: nothing but digits and signs reaches the SQL text.
    return "ARRAY[" + ",".join(str(int(v)) for v in values) + "]::int8[]"


# --- DDL -------------------------------------------------------------------------------------------

def create_schema(workspace: str) -> Statement:
    """Create the workspace's PostgreSQL schema when it is missing."""
    return Statement(f"CREATE SCHEMA IF NOT EXISTS {_pg_name(workspace, 'schema')}")


def create_table(table: PgTable, *, access_method: str = "deeplake") -> Statement:
    """Create the table `USING deeplake` when it is missing; the row key is its primary key.

    `access_method` exists for tests on a plain PostgreSQL server, which has no `deeplake` access
    method (`heap` there); production tables are always `deeplake`.
    """
    _pg_name(table.table_name, "table name")
    if not _PLAIN_NAME.fullmatch(access_method) or access_method in _RESERVED:
        raise ValueError(f"access method {access_method!r} must be a plain lower-case SQL name")
    columns = []
    for column in table.schema.all_columns:
        definition = f"{_pg_name(column.name, 'column name')} {pg_type(column)}"
        columns.append(definition + (" PRIMARY KEY" if column.name == ROW_KEY else ""))
    return Statement(f"CREATE TABLE IF NOT EXISTS {table.relation} ({', '.join(columns)}) USING {access_method}")


def add_column(table: PgTable, column: str) -> Statement:
    """Add one of the schema's columns to an existing table (a no-op when it is there)."""
    spec = table.schema.column(column)
    return Statement(f"ALTER TABLE {table.relation} ADD COLUMN IF NOT EXISTS "
                     f"{_pg_name(spec.name, 'column name')} {pg_type(spec)}")


def index_name(table: PgTable, column: str) -> str:
    """A deterministic index name, `idx_<table>_<column>`, shortened with a hash to fit 63 bytes."""
    name = f"idx_{table.table_name}_{column}"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    head = name.encode()[:MAX_NAME_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{head}_{digest}"


def normalize_index_type(index_type: str) -> str:
    """The spelling this module writes for an index type. The `deeplake` package's managed client knows
    pg_deeplake's names and aliases (`deeplake.managed.normalize_index_type`: `inverted` and the
    catalog's `inverted_index`, `exact`, `quantized`, ...), so it canonicalizes; this module then writes
    `inverted` for `inverted_index`. A name neither knows is kept as it is (a newer server's type read
    from its catalog), and `create_index` refuses it for not fitting the column."""
    try:
        canonical = managed_index_type(index_type)
    except ValueError:
        return index_type
    return INDEX_TYPE_ALIASES.get(canonical, canonical)


def create_index(table: PgTable, column: str, index_type: str, existing: Mapping[str, str] | None = None) -> Statement:
    """`CREATE INDEX … USING deeplake_index (col [DESC]) WITH (index_type = '…')` for one column.

    `existing` maps already-indexed columns to their index types (`Table.indexes()` or the
    `index_catalog` query); a second index on a column raises `IndexExistsError`, and a type that
    does not fit the column's kind raises `ValueError`.
    """
    spec = table.schema.column(column)
    wanted = normalize_index_type(index_type)
    allowed = INDEX_TYPES_BY_KIND.get(spec.kind, ())
    if not allowed:
        raise ValueError(f"column {column!r} ({spec.kind.value}) cannot carry a deeplake_index")
    if wanted not in allowed:
        raise ValueError(f"index type {index_type!r} does not fit column {column!r} ({spec.kind.value}); "
                         f"choose one of {allowed}")
    if wanted == "pooled_quantized" and spec.dim % 8:
        raise ValueError(f"pooled_quantized needs a dimension divisible by 8; {column!r} has {spec.dim}")
    if existing and column in existing:
        held = normalize_index_type(existing[column])
        raise IndexExistsError(
            f"column {column!r} of {table.catalog_name} already has a {held!r} index; pg_deeplake allows one "
            f"index per column, so drop it before creating a {wanted!r} one")
    direction = " DESC" if wanted in _RANKING_INDEX_TYPES else ""
    return Statement(
        f"CREATE INDEX {_pg_name(index_name(table, column), 'index name')} ON {table.relation} "
        f"USING deeplake_index ({quote_identifier(spec.name)}{direction}) WITH (index_type = '{wanted}')")


def drop_index(table: PgTable, column: str) -> Statement:
    """Drop the index `create_index` made on a column (an index lives in its table's schema)."""
    table.schema.column(column)
    name = quote_identifier(index_name(table, column))
    qualified = f"{quote_identifier(table.workspace)}.{name}" if table.workspace else name
    return Statement(f"DROP INDEX IF EXISTS {qualified} CASCADE")


def drop_table(table: PgTable) -> Statement:
    """Drop the table and what depends on it (its indexes)."""
    return Statement(f"DROP TABLE IF EXISTS {table.relation} CASCADE")


# --- catalog ---------------------------------------------------------------------------------------

def table_exists(table: PgTable) -> Statement:
    """One row with the number of deeplake tables of this name (0 or 1)."""
    return Statement("SELECT COUNT(*) FROM public.pg_deeplake_tables WHERE table_name = %s", (table.catalog_name,))


def table_names(workspace: str) -> Statement:
    """The names of the tables in a workspace, sorted."""
    return Statement("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
                     (workspace,))


def table_columns(table: PgTable) -> Statement:
    """The table's columns and their types, in table order (what `add_column` compares against)."""
    return Statement("SELECT column_name, data_type FROM information_schema.columns "
                     "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                     (table.workspace or "public", table.table_name))


def index_catalog(table: PgTable) -> Statement:
    """The table's deeplake indexes: column, index name and type (`inverted_index` for inverted)."""
    return Statement("SELECT column_name, index_name, index_type FROM public.pg_deeplake_metadata "
                     "WHERE table_name = %s ORDER BY column_name", (table.catalog_name,))


# --- writes ----------------------------------------------------------------------------------------

def _value_sql(column: Column, value: Any) -> tuple[str, tuple[Any, ...]]:
    if column.kind is Kind.VECTOR or column.kind is Kind.MULTI_VECTOR:
        return vector_literal(value, column.name), ()
    if column.kind is Kind.BOXES:
        return _boxes_literal(np.asarray(value, dtype=np.float32).reshape(-1, 4), column.name), ()
    if column.kind is Kind.INT_LIST:
        return _int_list_literal(value), ()
    if column.kind is Kind.JSON:
        return "%s::jsonb", (value,)  # validate_rows hands JSON over as compact text
    if column.kind is Kind.INT:
        return "%s", (int(value),)
    if column.kind is Kind.FLOAT:
        return "%s", (float(value),)
    return "%s", (value,)


def insert_rows(table: PgTable, partition: str, rows: list[dict[str, Any]],
                rows_per_statement: int = ROWS_PER_INSERT) -> list[Statement]:
    """Multi-row `INSERT … VALUES` statements for a partition's rows, validated first.

    Rows are checked by `validate_rows` (NaN/Inf vectors, wrong shapes, missing columns raise
    `RowValidationError` naming the row and column) before any SQL is built. Each statement holds
    at most `rows_per_statement` rows and `MAX_PARAMS` parameters.
    """
    if rows_per_statement < 1:
        raise ValueError(f"rows_per_statement must be at least 1, got {rows_per_statement}")
    columns = validate_rows(table.schema, rows, partition)
    specs = table.schema.all_columns
    bound_per_row = sum(c.kind in (Kind.TEXT, Kind.INT, Kind.FLOAT, Kind.JSON) for c in specs)
    per_statement = max(1, min(rows_per_statement, MAX_PARAMS // max(bound_per_row, 1)))
    head = f"INSERT INTO {table.relation} ({', '.join(quote_identifier(c.name) for c in specs)}) VALUES "
    statements = []
    for start in range(0, len(rows), per_statement):
        tuples, params = [], []
        for i in range(start, min(start + per_statement, len(rows))):
            parts = []
            for column in specs:
                sql, bound = _value_sql(column, columns[column.name][i])
                parts.append(sql)
                params.extend(bound)
            tuples.append("(" + ", ".join(parts) + ")")
        statements.append(Statement(head + ", ".join(tuples), tuple(params)))
    return statements


def delete_partition(table: PgTable, partition: str) -> Statement:
    """Delete every row of a partition."""
    return Statement(f"DELETE FROM {table.relation} WHERE {quote_identifier(PARTITION)} = %s", (partition,))


def delete_rows(table: PgTable, partition: str, row_keys: Sequence[str]) -> Statement:
    """Delete the partition's rows with these keys (at most `MAX_PARAMS` - 1 of them)."""
    keys = list(dict.fromkeys(row_keys))
    if not keys or len(keys) >= MAX_PARAMS:
        raise ValueError(f"delete_rows takes 1 to {MAX_PARAMS - 1} keys per statement, got {len(keys)}")
    return Statement(f"DELETE FROM {table.relation} WHERE {quote_identifier(PARTITION)} = %s "
                     f"AND {quote_identifier(ROW_KEY)} IN ({', '.join(['%s'] * len(keys))})", (partition, *keys))


def replace_partition(table: PgTable, partition: str, rows: list[dict[str, Any]],
                      rows_per_statement: int = ROWS_PER_INSERT) -> list[Statement]:
    """DELETE the partition's rows, then INSERT `rows`: run the list in ONE transaction.

    With psycopg 3: `with conn.transaction(): for s in statements: cur.execute(s.sql, s.params)`.
    The DELETE's row count is how many rows were replaced; a row key held by another partition
    fails the INSERT on the primary key and rolls the whole replace back.
    """
    return [delete_partition(table, partition), *insert_rows(table, partition, rows, rows_per_statement)]


# --- reads -----------------------------------------------------------------------------------------

def _columns(schema: TableSchema, names: Sequence[str]) -> str:
    """The row key first, then `names` (all columns when empty), each checked against the schema."""
    wanted = dict.fromkeys((ROW_KEY, *(names or schema.column_names)))
    return ", ".join(quote_identifier(schema.column(name).name) for name in wanted)


def select_partition(table: PgTable, partition: str, columns: Sequence[str] = ()) -> Statement:
    """A partition's rows in row-key order."""
    return Statement(f"SELECT {_columns(table.schema, columns)} FROM {table.relation} "
                     f"WHERE {quote_identifier(PARTITION)} = %s ORDER BY {quote_identifier(ROW_KEY)}", (partition,))


def select_rows(table: PgTable, row_keys: Sequence[str], columns: Sequence[str] = ()) -> Statement:
    """Rows by key, in row-key order; keys not stored are simply absent from the result."""
    keys = list(dict.fromkeys(row_keys))
    if not keys:
        raise ValueError("select_rows needs at least one row key")
    if len(keys) > MAX_PARAMS:
        raise ValueError(f"{len(keys)} keys exceed the {MAX_PARAMS} parameters one statement can carry; split them")
    placeholders = ", ".join(["%s"] * len(keys))
    return Statement(f"SELECT {_columns(table.schema, columns)} FROM {table.relation} "
                     f"WHERE {quote_identifier(ROW_KEY)} IN ({placeholders}) ORDER BY {quote_identifier(ROW_KEY)}",
                     tuple(keys))


def select_where(table: PgTable, where: Filter | None, columns: Sequence[str] = ()) -> Statement:
    """Rows matching a parsed filter (all rows when None), in row-key order."""
    condition, params = compile_filter(where, table.schema) if where is not None else ("", ())
    clause = f" WHERE {condition}" if condition else ""
    return Statement(f"SELECT {_columns(table.schema, columns)} FROM {table.relation}{clause} "
                     f"ORDER BY {quote_identifier(ROW_KEY)}", params)


def partition_counts(table: PgTable) -> Statement:
    """Row count per partition: rows of (partition, rows), sorted by partition."""
    partition = quote_identifier(PARTITION)
    return Statement(f'SELECT {partition}, COUNT(*) AS "rows" FROM {table.relation} '
                     f"GROUP BY {partition} ORDER BY {partition}")


def count_rows(table: PgTable, partition: str | None = None) -> Statement:
    """The table's row count, or one partition's."""
    if partition is None:
        return Statement(f"SELECT COUNT(*) FROM {table.relation}")
    return Statement(f"SELECT COUNT(*) FROM {table.relation} WHERE {quote_identifier(PARTITION)} = %s", (partition,))


# --- filters ---------------------------------------------------------------------------------------

def compile_filter(tree: Filter, schema: TableSchema) -> tuple[str, tuple[Any, ...]]:
    """A WHERE expression with `%s` placeholders for a parsed filter, and its parameters.

    Same checks as `tql.compile_filter`. JSON lookups are typed like TQL's: a string value compares
    with JSON strings only, a number with JSON numbers only; a row whose key is missing or holds
    another JSON type never matches.
    """
    if isinstance(tree, BoolOp):
        parts = [compile_filter(operand, schema) for operand in tree.operands]
        return ("(" + f" {tree.op} ".join(sql for sql, _ in parts) + ")",
                tuple(value for _, params in parts for value in params))
    column = filtered_column(tree, schema)
    name = quote_identifier(column.name)
    if tree.op == "CONTAINS":
        if isinstance(tree.value, str):
            raise ValueError(f"list column {column.name!r} holds integers: CONTAINS takes a number")
        return f"%s = ANY({name})", (tree.value,)
    if tree.op == "HAS":
        cast = "text" if isinstance(tree.value, str) else "numeric"
        return (f"(jsonb_typeof({name}->%s) = 'array' AND {name}->%s @> jsonb_build_array(%s::{cast}))",
                (tree.key, tree.key, tree.value))
    op = _OPERATORS[tree.op]
    if column.kind is not Kind.JSON:
        return f"{name} {op} %s", (tree.value,)
    if isinstance(tree.value, str):
        return f"(jsonb_typeof({name}->%s) = 'string' AND {name}->>%s {op} %s)", (tree.key, tree.key, tree.value)
    # CASE, not AND: PostgreSQL does not promise to test the type before it casts.
    return (f"(CASE WHEN jsonb_typeof({name}->%s) = 'number' THEN ({name}->>%s)::numeric END) {op} %s",
            (tree.key, tree.key, tree.value))


# --- search ----------------------------------------------------------------------------------------

def order_by_score(expression: str, indexed: bool = False) -> str:
    """The ORDER BY clause that puts the best `<#>` score first: served by the column's ranking index
    when `indexed` (INDEX_ORDER), else sorted (SCORE_ORDER)."""
    return f"ORDER BY {expression} {INDEX_ORDER if indexed else SCORE_ORDER}".rstrip()


def is_ranking_index(index_type: str | None) -> bool:
    """Whether an index type (as `Table.indexes()` gives it) serves `<#>` order (bm25, clustered, ...)."""
    return index_type is not None and normalize_index_type(index_type) in _RANKING_INDEX_TYPES


def _ranked(table: PgTable, select: Sequence[str], score: str, params: tuple[Any, ...], where: Filter | None,
            k: int, with_scores: bool, indexed: bool = False) -> Statement:
    columns = [ROW_KEY, *(name for name in select if name != ROW_KEY)]
    selected = ", ".join(quote_identifier(table.schema.column(name).name) for name in columns)
    alias = quote_identifier(SCORE_ALIAS)
    # pg_deeplake's tests pin the index-served form without a WHERE clause only; a filtered search keeps
    # DESC, right on whatever plan the server picks for it.
    indexed = indexed and where is None
    condition, where_params = compile_filter(where, table.schema) if where is not None else ("", ())
    clause = f" WHERE {condition}" if condition else ""
    if with_scores:
        return Statement(f"SELECT {selected}, {score} AS {alias} FROM {table.relation}{clause} "
                         f"{order_by_score(alias, indexed)} LIMIT {check_k(k)}", params + where_params)
    # Without a score column the ORDER BY repeats the expression, so its parameters come last.
    return Statement(f"SELECT {selected} FROM {table.relation}{clause} {order_by_score(score, indexed)} LIMIT {check_k(k)}",
                     where_params + params)


def _query_vector(column: Column, query: Any) -> np.ndarray:
    vectors = np.asarray(query)
    expected = 2 if column.kind is Kind.MULTI_VECTOR else 1
    if vectors.ndim != expected or vectors.shape[-1] != column.dim:
        raise ValueError(f"query shape {vectors.shape} does not fit column {column.name!r} (dim {column.dim})")
    return vectors


def vector_search(table: PgTable, search: VectorSearch, indexed: bool = False) -> Statement:
    """Top-k rows by `<#>`: cosine on a vector column, MaxSim on a multi-vector column.

    Mirrors `tql.compile_search`: the row key plus `search.select`, a `score` column unless
    `with_scores` is False, the optional filter, best first (`indexed`: the column has a ranking index
    that serves the order, see `SCORE_ORDER`).
    """
    column = table.schema.column(search.column)
    expected = Kind.MULTI_VECTOR if search.mode == "maxsim" else Kind.VECTOR
    if column.kind is not expected:
        raise ValueError(f"{search.mode} search needs a {expected.value} column; {column.name!r} is {column.kind.value}")
    literal = vector_literal(_query_vector(column, search.query), column.name)
    return _ranked(table, search.select, f"{_operand(column.name)} <#> {literal}", (), search.where, search.k,
                   search.with_scores, indexed)


def keyword_search(table: PgTable, search: KeywordSearch, *, where: Filter | None = None,
                   with_scores: bool = True, indexed: bool = False) -> Statement:
    """Top-k rows by BM25 (`text_column <#> %s`); the column needs a bm25 deeplake_index (`indexed`:
    the statement takes the index-served order form)."""
    column = table.schema.column(search.column)
    if column.kind is not Kind.TEXT:
        raise ValueError(f"keyword search needs a text column; {column.name!r} is {column.kind.value}")
    return _ranked(table, search.select, f"{_operand(column.name)} <#> %s", (search.text,), where, search.k,
                   with_scores, indexed)


def hybrid_search(table: PgTable, *, vector_column: str, query: Any, text_column: str, text: str, k: int = 10,
                  weights: tuple[float, float] | None = None, select: Sequence[str] = (),
                  where: Filter | None = None, with_scores: bool = True) -> Statement:
    """Top-k rows by `(vec, text) <#> deeplake_hybrid_record(vector, text[, w_vec, w_text])`.

    Cosine for a vector column, MaxSim for a multi-vector column, fused with BM25 on `text_column`.
    Without `weights` pg_deeplake weighs both legs 0.5.
    """
    vector_spec = table.schema.column(vector_column)
    text_spec = table.schema.column(text_column)
    if not vector_spec.is_vector:
        raise ValueError(f"hybrid search needs a vector column; {vector_column!r} is {vector_spec.kind.value}")
    if text_spec.kind is not Kind.TEXT:
        raise ValueError(f"hybrid search needs a text column; {text_column!r} is {text_spec.kind.value}")
    check_query_text(text)
    literal = vector_literal(_query_vector(vector_spec, query), vector_spec.name)
    params: tuple[Any, ...] = (text,)
    if weights is not None:
        w_vec, w_text = (float(w) for w in weights)
        if not all(np.isfinite([w_vec, w_text])) or w_vec < 0 or w_text < 0 or w_vec + w_text == 0:
            raise ValueError(f"hybrid weights must be finite, non-negative and not both zero, got {weights!r}")
        params += (w_vec, w_text)
    arguments = ", ".join([literal, *["%s"] * len(params)])
    score = f"({_operand(vector_spec.name)}, {_operand(text_spec.name)}) <#> deeplake_hybrid_record({arguments})"
    return _ranked(table, select, score, params, where, k, with_scores)


def explain(statement: Statement) -> Statement:
    """The planner's view of a statement (an index scan shows as `Index Scan … using idx_…`)."""
    return Statement(f"EXPLAIN {statement.sql}", statement.params)


# --- writer lock -----------------------------------------------------------------------------------

def advisory_lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name`: the first 8 bytes of its SHA-256, big-endian."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_table(table: PgTable) -> Statement:
    """Hold the table's writer lock until the transaction ends.

    `pg_advisory_xact_lock` is core PostgreSQL, whatever the table's access method, and every client
    of the server shares it, so it excludes writers on other machines too. The key is derived from the
    quoted, schema-qualified name: `"a.b"."c"` and `"a"."b.c"` get different keys.
    """
    return Statement("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key(f"dlk table {table.relation}"),))


def lock_workspace(workspace: str) -> Statement:
    """The workspace's lock, held while its schema and bookkeeping tables are created (two first
    writers running `CREATE … IF NOT EXISTS` at once otherwise collide on the catalog)."""
    return Statement("SELECT pg_advisory_xact_lock(%s)",
                     (advisory_lock_key(f"dlk workspace {quote_identifier(workspace)}"),))


def set_lock_timeout(seconds: float) -> Statement:
    """Bound how long the current transaction waits for any lock, the advisory lock included.

    PostgreSQL reads a `lock_timeout` of 0 as "wait forever", so the timeout must be at least 1 ms.
    """
    value = float(seconds)
    if not (math.isfinite(value) and round(value * 1000) >= 1):
        raise ValueError(f"a lock timeout must be at least 1 ms (and finite), got {seconds!r} s")
    milliseconds = round(value * 1000)
    return Statement("SELECT set_config('lock_timeout', %s, true)", (f"{milliseconds}ms",))


def existing_relations(workspace: str, names: Sequence[str]) -> Statement:
    """Which of `names` exist as relations (tables, sequences, views) in the workspace's schema.

    Read from `pg_catalog`, so it works for any access method and does not depend on pg_deeplake's
    own catalog tables.
    """
    if not names:
        raise ValueError("existing_relations needs at least one name")
    placeholders = ", ".join(["%s"] * len(names))
    return Statement("SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                     f"ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname IN ({placeholders}) "
                     "ORDER BY c.relname", (workspace, *names))


# --- bookkeeping: versions and tags in ordinary (heap) tables beside the lake's ---------------------
# Deep Lake PG exposes no dataset version or tag over SQL, so the backend keeps its own, changed in
# the same transaction as the data they describe. `USING heap` is explicit: a server may default new
# tables to another access method.

VERSIONS_TABLE = "dlk_table_versions"
TAGS_TABLE = "dlk_table_tags"
VERSION_SEQUENCE = "dlk_table_version_seq"
FILES_TABLE = "dlk_files"  # what the /files API does not say: each file id's sha256, size, name and type
BOOKKEEPING = (FILES_TABLE, TAGS_TABLE, VERSION_SEQUENCE, VERSIONS_TABLE)
TAG_TABLE_INFIX = "__tag__"


def _in_workspace(workspace: str, name: str) -> str:
    return f"{_pg_name(workspace, 'schema')}.{quote_identifier(name)}"


def create_bookkeeping(workspace: str) -> list[Statement]:
    """The workspace's schema, its version sequence and its version and tag tables (each if missing).

    Versions come from one sequence per workspace, so a version id is never reused, not even by a
    table dropped and created again under the same name.
    """
    versions, tags = _in_workspace(workspace, VERSIONS_TABLE), _in_workspace(workspace, TAGS_TABLE)
    return [
        create_schema(workspace),
        Statement(f"CREATE SEQUENCE IF NOT EXISTS {_in_workspace(workspace, VERSION_SEQUENCE)}"),
        Statement(f"CREATE TABLE IF NOT EXISTS {versions} (table_name TEXT PRIMARY KEY, version BIGINT NOT NULL, "
                  "message TEXT NOT NULL DEFAULT '', changed_at TIMESTAMPTZ NOT NULL DEFAULT now()) USING heap"),
        Statement(f"CREATE TABLE IF NOT EXISTS {tags} (table_name TEXT NOT NULL, tag TEXT NOT NULL, "
                  "version BIGINT NOT NULL, snapshot_table TEXT NOT NULL, "
                  "tagged_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (table_name, tag)) USING heap"),
        Statement(f"CREATE TABLE IF NOT EXISTS {_in_workspace(workspace, FILES_TABLE)} (file_id TEXT PRIMARY KEY, "
                  "sha256 TEXT NOT NULL UNIQUE, size BIGINT NOT NULL, filename TEXT NOT NULL, content_type TEXT NOT NULL, "
                  "uploaded_at TIMESTAMPTZ NOT NULL DEFAULT now()) USING heap"),
    ]


FILE_FIELDS = ("file_id", "sha256", "size", "filename", "content_type")


def remember_file(workspace: str, fields: tuple[str, str, int, str, str]) -> Statement:
    """Record an uploaded file (`FILE_FIELDS`); the first record of a sha256 stays (a racing uploader's
    duplicate id is not recorded, and reads of its sha256 give the first id)."""
    return Statement(f"INSERT INTO {_in_workspace(workspace, FILES_TABLE)} ({', '.join(FILE_FIELDS)}) "
                     "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", tuple(fields))


def file_record(workspace: str, by: str, value: str) -> Statement:
    """The record of one file, by `file_id` or `sha256` (no row when none)."""
    if by not in ("file_id", "sha256"):
        raise ValueError(f"files are looked up by file_id or sha256, not {by!r}")
    return Statement(f"SELECT {', '.join(FILE_FIELDS)} FROM {_in_workspace(workspace, FILES_TABLE)} WHERE {by} = %s",
                     (value,))


def bump_version(workspace: str, table_name: str, message: str) -> Statement:
    """Give the table a new version (the next value of the workspace's sequence); returns it.

    Run it in the transaction that changes the table, so the version changes exactly when the data does.
    """
    return Statement(f"INSERT INTO {_in_workspace(workspace, VERSIONS_TABLE)} (table_name, version, message, changed_at) "
                     "VALUES (%s, nextval(%s), %s, now()) ON CONFLICT (table_name) DO UPDATE SET "
                     "version = EXCLUDED.version, message = EXCLUDED.message, changed_at = EXCLUDED.changed_at "
                     "RETURNING version", (table_name, _in_workspace(workspace, VERSION_SEQUENCE), message))


def table_version(workspace: str, table_name: str) -> Statement:
    """The table's current version (no row before its first write)."""
    return Statement(f"SELECT version FROM {_in_workspace(workspace, VERSIONS_TABLE)} WHERE table_name = %s",
                     (table_name,))


def table_tag(workspace: str, table_name: str, tag: str) -> Statement:
    """The version and snapshot table of one tag (no row when the table has no such tag)."""
    return Statement(f"SELECT version, snapshot_table FROM {_in_workspace(workspace, TAGS_TABLE)} "
                     "WHERE table_name = %s AND tag = %s", (table_name, tag))


def table_tags(workspace: str, table_name: str) -> Statement:
    """Every tag of a table: (tag, version, snapshot table), by tag."""
    return Statement(f"SELECT tag, version, snapshot_table FROM {_in_workspace(workspace, TAGS_TABLE)} "
                     "WHERE table_name = %s ORDER BY tag", (table_name,))


def snapshot_of_version(workspace: str, table_name: str, version: int) -> Statement:
    """A snapshot table already holding this version of the table (a second tag reuses it)."""
    return Statement(f"SELECT snapshot_table FROM {_in_workspace(workspace, TAGS_TABLE)} "
                     "WHERE table_name = %s AND version = %s ORDER BY tag LIMIT 1", (table_name, version))


def record_tag(workspace: str, table_name: str, tag: str, version: int, snapshot_table: str) -> Statement:
    """Record that `tag` pins `version`, whose rows are in `snapshot_table`."""
    return Statement(f"INSERT INTO {_in_workspace(workspace, TAGS_TABLE)} (table_name, tag, version, snapshot_table) "
                     "VALUES (%s, %s, %s, %s)", (table_name, tag, version, snapshot_table))


def snapshot_tables(workspace: str) -> Statement:
    """Every snapshot table of the workspace (they are not lake tables of their own)."""
    return Statement(f"SELECT DISTINCT snapshot_table FROM {_in_workspace(workspace, TAGS_TABLE)} "
                     "ORDER BY snapshot_table")


def forget_table(workspace: str, table_name: str) -> list[Statement]:
    """Delete a dropped table's tags and version (drop its snapshot tables first)."""
    return [Statement(f"DELETE FROM {_in_workspace(workspace, TAGS_TABLE)} WHERE table_name = %s", (table_name,)),
            Statement(f"DELETE FROM {_in_workspace(workspace, VERSIONS_TABLE)} WHERE table_name = %s", (table_name,))]


def tag_table_name(table_name: str, tag: str) -> str:
    """The snapshot table of a tag: `<table>__tag__<10 hex of SHA-256(tag)>`, within 63 bytes.

    A table name too long for that keeps its head and hashes the table and tag together, so two long
    names with one head still get different snapshots.
    """
    name = f"{table_name}{TAG_TABLE_INFIX}{hashlib.sha256(tag.encode()).hexdigest()[:10]}"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(f"{table_name}\x00{tag}".encode()).hexdigest()[:10]
    room = MAX_NAME_BYTES - len(TAG_TABLE_INFIX) - len(digest)
    head = table_name.encode()[:room].decode(errors="ignore")
    return f"{head}{TAG_TABLE_INFIX}{digest}"


def copy_rows(source: PgTable, target: PgTable) -> Statement:
    """`INSERT INTO target (…) SELECT … FROM source`: every column of the target's schema."""
    columns = ", ".join(quote_identifier(c.name) for c in target.schema.all_columns)
    return Statement(f"INSERT INTO {target.relation} ({columns}) SELECT {columns} FROM {source.relation}")
