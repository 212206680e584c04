"""Deep Lake PG SQL (`dlk_assets/lake/pg_sql.py`): golden statements and local execution.

Golden SQL: every statement form is pinned to the form pg_deeplake's own tests use
(activeloopai/deeplake, `postgres/tests/py_tests/<file>`, named in a comment at each test). Where
this module departs from a test's form it says why: on a column without a ranking index
`ORDER BY "score" DESC` (the tests' bare `ORDER BY score` is best-first only on an index-ordered plan;
see `pg_sql.SCORE_ORDER`), and an explicit `WITH (index_type = …)` on every index. On an indexed column
the statement takes the tests' own bare form, the one they assert an index scan for.

Execution: no pg_deeplake server runs here. The embedded engine's Postgres dialect
(`deeplake.query(sql, dialect="postgres")`, the table in FROM being the quoted `file://` dataset
URL) runs the generated cosine and BM25 SELECTs over a table written by the local backend, and they
must rank like the TQL path (`Table.search`, `Table.keyword_search`). `deeplake.query` takes no
parameters, so `inline_params` below binds them client-side as quoted literals, the way psycopg's
ClientCursor would. Measured quirks of that dialect the tests work around, not pin:
- its text `<#>` score counts the query words a text contains (4.0, 3.0, …), not BM25, so the BM25
  data gives every matching row a different count;
- with a WHERE clause it takes the top k of the whole table and filters afterwards, so the filtered
  search asks for k >= the table's rows (where both orders of operations agree).
MaxSim `<#>` on float4[][] does not run there (no 2-D cosine function) and its hybrid
`deeplake_hybrid_record` form returns the same score for every row: the MaxSim and hybrid
statements rest on the golden SQL alone.
"""

from __future__ import annotations

import math
import re
from typing import Any

import deeplake
import deeplake.managed
import numpy as np
import pytest

from dlk_assets.lake import pg_sql
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.pg_sql import PgTable, Statement
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import RowValidationError
from dlk_assets.retrieval import tql
from dlk_assets.retrieval.filters import BoolOp, Comparison, parse_filter
from dlk_assets.retrieval.requests import KeywordSearch, VectorSearch

HOSTILE = "O'Brien \\ \"q\" ünïcødé 😀 '; DROP TABLE x; --"

DOCS = TableSchema("docs", (
    Column("task", Kind.TEXT), Column("n", Kind.INT), Column("x", Kind.FLOAT), Column("meta", Kind.JSON),
    Column("ids", Kind.INT_LIST), Column("boxes", Kind.BOXES), Column("emb", Kind.VECTOR, dim=3),
    Column("mv", Kind.MULTI_VECTOR, dim=8),
))
T = PgTable(DOCS, "ws")


def inline_params(statement: Statement) -> str:
    """The statement with its `%s` parameters written in as SQL literals (client-side binding).

    Strings are single-quoted with quotes doubled (standard_conforming_strings: a backslash is an
    ordinary character), numbers are written as numbers; `%%` is a literal `%`.
    """
    values = iter(statement.params)

    def literal(match: re.Match) -> str:
        if match.group() == "%%":
            return "%"
        value = next(values)
        if isinstance(value, str):
            assert "\x00" not in value
            return "'" + value.replace("'", "''") + "'"
        if isinstance(value, bool) or value is None:
            raise TypeError(f"no literal form here for {value!r}")
        if isinstance(value, int):
            return str(value)
        assert math.isfinite(value)
        return repr(float(value))

    sql = re.sub(r"%[s%]", literal, statement.sql)
    assert next(values, None) is None, "more parameters than placeholders"
    return sql


def _sql_outside_quotes(sql: str) -> str:
    """The SQL text with quoted identifiers and string constants blanked out."""
    return re.sub(r"\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'", "_", sql)


# --- golden DDL ------------------------------------------------------------------------------------

def test_create_schema_and_table():
    # test_concurrent_create_table.py: CREATE SCHEMA IF NOT EXISTS "{schema_name}" and
    # CREATE TABLE IF NOT EXISTS "{schema_name}".{table_name} (... JSONB, BIGINT ...) USING deeplake;
    # float4[] (test_random_embedding.py), float4[][] (test_hybrid_search.py), BIGINT[] / REAL
    # (test_numeric_arrays.py), PRIMARY KEY (test_constraint_enforcement.py).
    assert pg_sql.create_schema("ws") == ('CREATE SCHEMA IF NOT EXISTS "ws"', ())
    assert pg_sql.create_table(T) == (
        ('CREATE TABLE IF NOT EXISTS "ws"."docs" ("row_key" TEXT PRIMARY KEY, "partition" TEXT, "task" TEXT, '
         '"n" BIGINT, "x" REAL, "meta" JSONB, "ids" BIGINT[], "boxes" FLOAT4[][], "emb" FLOAT4[], '
         '"mv" FLOAT4[][]) USING deeplake'), ())


def test_add_column():
    # test_add_column.py: ALTER TABLE a ADD COLUMN surname TEXT; IF NOT EXISTS as in the seed guide
    # (ALTER TABLE ... ADD COLUMN IF NOT EXISTS embedding FLOAT4[]), so reopening a table is idempotent.
    assert pg_sql.add_column(T, "emb") == ('ALTER TABLE "ws"."docs" ADD COLUMN IF NOT EXISTS "emb" FLOAT4[]', ())
    with pytest.raises(ValueError, match="no column"):
        pg_sql.add_column(T, "nope")


@pytest.mark.parametrize(("column", "index_type", "sql"), [
    # test_basic_ops.py: CREATE INDEX index_for_v1 ON vectors USING deeplake_index (v1 DESC)
    ("emb", "clustered", ('CREATE INDEX "idx_docs_emb" ON "ws"."docs" USING deeplake_index ("emb" DESC) '
                          "WITH (index_type = 'clustered')")),
    # cpp/deeplake_pg/pg_deeplake.cpp: 'clustered', 'clustered_quantized' for a 1-D float32 array
    ("emb", "clustered_quantized", ('CREATE INDEX "idx_docs_emb" ON "ws"."docs" USING deeplake_index ("emb" DESC) '
                                    "WITH (index_type = 'clustered_quantized')")),
    # test_hybrid_search.py: CREATE INDEX index_for_maxsim ON documents USING deeplake_index (embedding_2d DESC)
    ("mv", "pooled_quantized", ('CREATE INDEX "idx_docs_mv" ON "ws"."docs" USING deeplake_index ("mv" DESC) '
                                "WITH (index_type = 'pooled_quantized')")),
    # test_text_search.py: USING deeplake_index (content) WITH (index_type = 'bm25');
    # test_hybrid_search.py: USING deeplake_index (keywords DESC)
    ("task", "bm25", ('CREATE INDEX "idx_docs_task" ON "ws"."docs" USING deeplake_index ("task" DESC) '
                      "WITH (index_type = 'bm25')")),
    # test_exact_text_multiple_tables.py: CREATE INDEX idx_coco_name_exact ON "test_schema".coco
    #   USING deeplake_index (name) WITH (index_type = 'exact_text')
    ("task", "exact_text", ('CREATE INDEX "idx_docs_task" ON "ws"."docs" USING deeplake_index ("task") '
                            "WITH (index_type = 'exact_text')")),
    # test_text_search.py: USING deeplake_index (id) WITH (index_type = 'inverted')
    ("task", "inverted", ('CREATE INDEX "idx_docs_task" ON "ws"."docs" USING deeplake_index ("task") '
                          "WITH (index_type = 'inverted')")),
    ("n", "inverted", ('CREATE INDEX "idx_docs_n" ON "ws"."docs" USING deeplake_index ("n") '
                       "WITH (index_type = 'inverted')")),
    # pg_deeplake's catalog spells it inverted_index (deeplake_index_type::to_string)
    ("meta", "inverted_index", ('CREATE INDEX "idx_docs_meta" ON "ws"."docs" USING deeplake_index ("meta") '
                                "WITH (index_type = 'inverted')")),
])
def test_create_index(column, index_type, sql):
    assert pg_sql.create_index(T, column, index_type) == (sql, ())


@pytest.mark.parametrize(("column", "index_type", "message"), [
    ("task", "clustered", "does not fit"),
    ("emb", "bm25", "does not fit"),
    ("emb", "pooled_quantized", "does not fit"),
    ("mv", "clustered", "does not fit"),
    ("n", "exact_text", "does not fit"),
    ("ids", "inverted", "cannot carry"),
    ("boxes", "pooled_quantized", "cannot carry"),
    ("task", "hnsw", "does not fit"),
])
def test_create_index_refuses_a_type_that_does_not_fit(column, index_type, message):
    with pytest.raises(ValueError, match=message):
        pg_sql.create_index(T, column, index_type)


def test_create_index_refuses_a_second_index_on_a_column():
    # cpp/deeplake_pg/pg_deeplake.cpp: "Multiple indexes on the same column are not supported yet."
    with pytest.raises(pg_sql.IndexExistsError, match="already has a 'exact_text' index"):
        pg_sql.create_index(T, "task", "bm25", existing={"task": "exact_text"})
    with pytest.raises(pg_sql.IndexExistsError, match="already has a 'inverted' index"):
        pg_sql.create_index(T, "n", "inverted", existing={"n": "inverted_index"})
    assert pg_sql.create_index(T, "task", "bm25", existing={"emb": "clustered"}).sql.startswith("CREATE INDEX")
    odd = PgTable(TableSchema("t", (Column("mv", Kind.MULTI_VECTOR, dim=12),)), "ws")
    with pytest.raises(ValueError, match="divisible by 8"):
        pg_sql.create_index(odd, "mv", "pooled_quantized")


def test_index_names_fit_postgres():
    long = PgTable(TableSchema("t" * 60, (Column("emb", Kind.VECTOR, dim=3),)), "ws")
    name = pg_sql.index_name(long, "emb")
    assert len(name.encode()) <= 63 and name.startswith("idx_ttt")
    assert name == pg_sql.index_name(long, "emb")


def test_drop_index_and_table():
    # test_drop_index.py: DROP INDEX IF EXISTS index_for_v1 CASCADE
    assert pg_sql.drop_index(T, "emb") == ('DROP INDEX IF EXISTS "ws"."idx_docs_emb" CASCADE', ())
    # test_drop_table.py: DROP TABLE IF EXISTS vectors CASCADE
    assert pg_sql.drop_table(T) == ('DROP TABLE IF EXISTS "ws"."docs" CASCADE', ())


def test_catalog_queries():
    # test_concurrent_create_table.py: SELECT COUNT(*) FROM public.pg_deeplake_tables WHERE table_name = $1
    assert pg_sql.table_exists(T) == ("SELECT COUNT(*) FROM public.pg_deeplake_tables WHERE table_name = %s",
                                      ("ws.docs",))
    # test_add_column.py: SELECT column_name, data_type FROM information_schema.columns
    #   WHERE table_schema = 'valod' AND table_name = 'a' ORDER BY ordinal_position
    assert pg_sql.table_columns(T) == (
        ("SELECT column_name, data_type FROM information_schema.columns "
         "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"), ("ws", "docs"))
    # test_drop_table.py: SELECT index_name FROM pg_deeplake_metadata (columns: pg_deeplake--1.0.sql)
    assert pg_sql.index_catalog(T) == (
        ("SELECT column_name, index_name, index_type FROM public.pg_deeplake_metadata "
         "WHERE table_name = %s ORDER BY column_name"), ("ws.docs",))
    assert pg_sql.table_names("ws") == (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name", ("ws",))
    assert pg_sql.table_exists(PgTable(DOCS)).params == ("public.docs",)


# --- golden writes ---------------------------------------------------------------------------------

def _doc(key: str, **overrides: Any) -> dict[str, Any]:
    row = {"row_key": key, "task": "fix login bug", "n": 7, "x": 0.5, "meta": {"dataset": "coco", "w": 3},
           "ids": [1, 2], "boxes": [[0.0, 1.0, 2.5, 3.0]], "emb": [0.1, 0.2, 0.3], "mv": np.ones((2, 8), np.float32)}
    row.update(overrides)
    return row


def test_insert_rows():
    # test_exact_text_multiple_tables.py: INSERT INTO "test_schema".coco (id, name) VALUES (...), (...);
    # test_concurrent_insert_index.py: '{"page": 1}'::jsonb; test_numeric_arrays.py: ARRAY[100, 200]::int8[];
    # test_hybrid_search.py: vectors and ARRAY[[...], [...]] multi-vectors as array literals.
    rows = [_doc("a"), _doc("b", ids=[], boxes=[], emb=[1, 0, -2.5], mv=np.full((1, 8), 0.25, np.float32))]
    [statement] = pg_sql.insert_rows(T, "p1", rows)
    assert statement.sql == (
        'INSERT INTO "ws"."docs" ("row_key", "partition", "task", "n", "x", "meta", "ids", "boxes", "emb", "mv") VALUES '
        "(%s, %s, %s, %s, %s, %s::jsonb, ARRAY[1,2]::int8[], ARRAY[ARRAY[0.0,1.0,2.5,3.0]]::float4[][], "
        "ARRAY[0.1,0.2,0.3]::float4[], ARRAY[ARRAY[1.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0],"
        "ARRAY[1.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0]]::float4[][]), "
        "(%s, %s, %s, %s, %s, %s::jsonb, ARRAY[]::int8[], ARRAY[]::float4[][], ARRAY[1.0,0.0,-2.5]::float4[], "
        "ARRAY[ARRAY[0.25,0.25,0.25,0.25,0.25,0.25,0.25,0.25]]::float4[][])")
    assert statement.params == ("a", "p1", "fix login bug", 7, 0.5, '{"dataset":"coco","w":3}',
                                "b", "p1", "fix login bug", 7, 0.5, '{"dataset":"coco","w":3}')
    assert pg_sql.insert_rows(T, "p1", []) == []


def test_insert_rows_batches_statements():
    rows = [_doc(f"k{i}") for i in range(5)]
    statements = pg_sql.insert_rows(T, "p1", rows, rows_per_statement=2)
    assert [s.sql.count("::jsonb") for s in statements] == [2, 2, 1]
    assert [s.params[0] for s in statements] == ["k0", "k2", "k4"]
    assert all(s.sql.count("%s") == len(s.params) for s in statements)


def test_replace_partition_is_delete_then_insert():
    # test_bulk_delete.py: DELETE FROM people WHERE name = 'n3' AND last_name = 'l3'
    statements = pg_sql.replace_partition(T, "p1", [_doc("a")])
    assert statements[0] == ('DELETE FROM "ws"."docs" WHERE "partition" = %s', ("p1",))
    assert statements[1:] == pg_sql.insert_rows(T, "p1", [_doc("a")])
    assert pg_sql.replace_partition(T, "p1", []) == [('DELETE FROM "ws"."docs" WHERE "partition" = %s', ("p1",))]


def test_writes_are_validated_first():
    with pytest.raises(RowValidationError, match="row 'a'.*column 'emb'.*non-finite"):
        pg_sql.insert_rows(T, "p1", [_doc("a", emb=[0.1, float("inf"), 0.3])])
    with pytest.raises(RowValidationError, match="column 'mv'.*non-finite"):
        pg_sql.replace_partition(T, "p1", [_doc("a", mv=np.full((1, 8), np.nan))])
    with pytest.raises(RowValidationError, match="dimension 2 does not match"):
        pg_sql.insert_rows(T, "p1", [_doc("a", emb=[0.1, 0.2])])


# --- golden reads ----------------------------------------------------------------------------------

def test_select_statements():
    # test_add_numeric_columns.py: SELECT * FROM users WHERE id IN (2, 3) ORDER BY id
    assert pg_sql.select_rows(T, ["b", "a", "b"], ("task",)) == (
        'SELECT "row_key", "task" FROM "ws"."docs" WHERE "row_key" IN (%s, %s) ORDER BY "row_key"', ("b", "a"))
    assert pg_sql.select_partition(T, "p1", ("row_key",)) == (
        'SELECT "row_key" FROM "ws"."docs" WHERE "partition" = %s ORDER BY "row_key"', ("p1",))
    assert pg_sql.select_where(T, None, ("n",)) == ('SELECT "row_key", "n" FROM "ws"."docs" ORDER BY "row_key"', ())
    assert pg_sql.select_partition(T, "p1").sql.startswith(
        'SELECT "row_key", "partition", "task", "n", "x", "meta", "ids", "boxes", "emb", "mv" FROM')
    # test_count_optimization.py: SELECT category, COUNT(*) as cnt FROM t GROUP BY category ORDER BY category
    assert pg_sql.partition_counts(T) == (
        'SELECT "partition", COUNT(*) AS "rows" FROM "ws"."docs" GROUP BY "partition" ORDER BY "partition"', ())
    # test_exact_text_multiple_tables.py: SELECT COUNT(*) FROM "test_schema".coco
    assert pg_sql.count_rows(T) == ('SELECT COUNT(*) FROM "ws"."docs"', ())
    assert pg_sql.count_rows(T, "p1") == ('SELECT COUNT(*) FROM "ws"."docs" WHERE "partition" = %s', ("p1",))
    with pytest.raises(ValueError, match="at least one row key"):
        pg_sql.select_rows(T, [])
    with pytest.raises(ValueError, match="no column"):
        pg_sql.select_partition(T, "p1", ("nope",))


@pytest.mark.parametrize(("text", "sql", "params"), [
    # test_bulk_update.py: WHERE age <= 4; test_text_search.py: WHERE tags = '...'
    ("n >= 3 AND task != 'x'", '("n" >= %s AND "task" <> %s)', (3, "x")),
    ("(x < 0.5 OR n == 2) AND partition = 'p'", '(("x" < %s OR "n" = %s) AND "partition" = %s)', (0.5, 2, "p")),
    # test_array.py: WHERE 10.0 = ANY(float4_array_1d)
    ("ids CONTAINS 7", '%s = ANY("ids")', (7,)),
    # test_json.py: WHERE jsonb_col->>'name' = 'Alice', typed to JSON strings as TQL's meta['k'] == 'v' is
    ("meta.dataset = 'coco'", "(jsonb_typeof(\"meta\"->%s) = 'string' AND \"meta\"->>%s = %s)",
     ("dataset", "dataset", "coco")),
    # test_json.py: WHERE (json_col->>'age')::int > 30, typed to JSON numbers (no cast error on text)
    ("meta.w > 2", "(CASE WHEN jsonb_typeof(\"meta\"->%s) = 'number' THEN (\"meta\"->>%s)::numeric END) > %s",
     ("w", "w", 2)),
])
def test_compile_filter(text, sql, params):
    assert pg_sql.compile_filter(parse_filter(text), DOCS) == (sql, params)


@pytest.mark.parametrize("text", [
    "meta = 'x'", "task.k = 'x'", "task CONTAINS 3", "ids == 3", "task = 3", "n = 'three'", "emb = 1", "nope = 1",
])
def test_compile_filter_refuses_what_tql_refuses(text):
    tree = parse_filter(text)
    with pytest.raises(ValueError):
        tql.compile_filter(tree, DOCS)
    with pytest.raises(ValueError):
        pg_sql.compile_filter(tree, DOCS)


# --- golden searches -------------------------------------------------------------------------------

def test_cosine_search():
    # test_hybrid_search.py: SELECT id, title, content, embedding_1d <#> ARRAY[0.1, ...] as score
    #   FROM documents ORDER BY score LIMIT 10 -- with DESC here (pg_sql.SCORE_ORDER); the literal is
    #   cast ::float4[] as in the seed guide and postgres/README.md ("ORDER BY score DESC").
    search = VectorSearch("emb", np.array([0.1, 0.2, 0.3], np.float32), mode="vector", k=10, select=("task",),
                          where=parse_filter("n > 1"))
    assert pg_sql.vector_search(T, search) == (
        ('SELECT "row_key", "task", emb <#> ARRAY[0.1,0.2,0.3]::float4[] AS "score" FROM "ws"."docs" '
         'WHERE "n" > %s ORDER BY "score" DESC LIMIT 10'), (1,))


def test_an_indexed_column_takes_the_index_served_order_form():
    # tests/sql/hybrid_search.sql: is_using_index_scan('SELECT id, ..., embedding_1d <#> ARRAY[...] as score
    #   FROM documents ORDER BY score LIMIT 10'); py_tests/test_order_check.py: with a (v2 DESC) index,
    #   ORDER BY v2 <#> ARRAY[...] LIMIT 5 returns the most similar first.
    search = VectorSearch("emb", np.array([0.1, 0.2, 0.3], np.float32), mode="vector", k=10, select=("task",))
    assert pg_sql.vector_search(T, search, indexed=True) == (
        'SELECT "row_key", "task", emb <#> ARRAY[0.1,0.2,0.3]::float4[] AS "score" FROM "ws"."docs" ORDER BY "score" LIMIT 10', ())
    assert pg_sql.keyword_search(T, KeywordSearch("task", "fix", k=3), with_scores=False, indexed=True) == (
        'SELECT "row_key" FROM "ws"."docs" ORDER BY task <#> %s LIMIT 3', ("fix",))
    filtered = VectorSearch("emb", np.array([0.1, 0.2, 0.3], np.float32), mode="vector", k=10, where=parse_filter("n > 1"))
    assert pg_sql.vector_search(T, filtered, indexed=True).sql.endswith('WHERE "n" > %s ORDER BY "score" DESC LIMIT 10')
    assert [pg_sql.is_ranking_index(kind) for kind in ("clustered", "bm25", "pooled_quantized", "inverted", "exact_text", None)] == [
        True, True, True, False, False, False]


def test_cosine_search_without_scores_orders_by_the_expression():
    # test_text_search.py: ORDER BY content <#> 'machine learning algorithms' LIMIT 3 (no score column)
    search = VectorSearch("emb", np.array([1, 0, 0]), mode="vector", k=3, with_scores=False,
                          where=parse_filter("task = 'a'"))
    assert pg_sql.vector_search(T, search) == (
        ('SELECT "row_key" FROM "ws"."docs" WHERE "task" = %s '
         "ORDER BY emb <#> ARRAY[1.0,0.0,0.0]::float4[] DESC LIMIT 3"), ("a",))


def test_maxsim_search():
    # test_hybrid_search.py: embedding_2d <#> ARRAY[[0.1, ..., 0.8]] as score; the seed guide:
    #   colqwen_embedding <#> ARRAY{q_emb}::float4[][] AS score ... ORDER BY score DESC
    query = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [1, 0, 0, 0, 0, 0, 0, -1]], np.float32)
    assert pg_sql.vector_search(T, VectorSearch("mv", query, k=5)) == (
        ('SELECT "row_key", mv <#> ARRAY[ARRAY[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],ARRAY[1.0,0.0,0.0,0.0,0.0,0.0,0.0,-1.0]]'
         '::float4[][] AS "score" FROM "ws"."docs" ORDER BY "score" DESC LIMIT 5'), ())


def test_keyword_search():
    # test_hybrid_search.py: keywords <#> 'machine learning' as score FROM documents ORDER BY score LIMIT 10
    assert pg_sql.keyword_search(T, KeywordSearch("task", "fix login", k=10, select=("n",))) == (
        'SELECT "row_key", "n", task <#> %s AS "score" FROM "ws"."docs" ORDER BY "score" DESC LIMIT 10', ("fix login",))
    assert pg_sql.keyword_search(T, KeywordSearch("task", "fix", k=3), where=parse_filter("n = 1"),
                                 with_scores=False) == (
        'SELECT "row_key" FROM "ws"."docs" WHERE "n" = %s ORDER BY task <#> %s DESC LIMIT 3', (1, "fix"))


def test_hybrid_search():
    # test_hybrid_search.py: (embedding_1d, keywords) <#> deeplake_hybrid_record(ARRAY[...], 'machine learning')
    #   and deeplake_hybrid_record(ARRAY[...], 'machine learning', 0.999, 0.001)
    assert pg_sql.hybrid_search(T, vector_column="emb", query=[0.1, 0.2, 0.3], text_column="task",
                                text="machine learning", k=10) == (
        ('SELECT "row_key", (emb, task) <#> deeplake_hybrid_record(ARRAY[0.1,0.2,0.3]::float4[], %s) AS "score" '
         'FROM "ws"."docs" ORDER BY "score" DESC LIMIT 10'), ("machine learning",))
    assert pg_sql.hybrid_search(T, vector_column="mv", query=np.ones((1, 8)), text_column="task", text="fix",
                                k=2, weights=(0.999, 0.001), select=("n",), where=parse_filter("n < 9")) == (
        ('SELECT "row_key", "n", (mv, task) <#> deeplake_hybrid_record('
         "ARRAY[ARRAY[1.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0]]::float4[][], %s, %s, %s) AS \"score\" "
         'FROM "ws"."docs" WHERE "n" < %s ORDER BY "score" DESC LIMIT 2'), ("fix", 0.999, 0.001, 9))
    for weights in [(0, 0), (-1, 1), (float("nan"), 1)]:
        with pytest.raises(ValueError, match="weights"):
            pg_sql.hybrid_search(T, vector_column="emb", query=[1, 2, 3], text_column="task", text="a", weights=weights)


def test_explain():
    # test_hybrid_search.py: EXPLAIN SELECT id, title, content, embedding_1d <#> ARRAY[...] as score ...
    search = pg_sql.keyword_search(T, KeywordSearch("task", "fix", k=3))
    assert pg_sql.explain(search) == ("EXPLAIN " + search.sql, ("fix",))


def test_searches_refuse_what_does_not_fit():
    with pytest.raises(ValueError, match="needs a multi_vector column"):
        pg_sql.vector_search(T, VectorSearch("emb", np.ones((1, 3)), k=3))
    with pytest.raises(ValueError, match="needs a vector column"):
        pg_sql.vector_search(T, VectorSearch("mv", np.ones(8), mode="vector", k=3))
    with pytest.raises(ValueError, match="does not fit column"):
        pg_sql.vector_search(T, VectorSearch("emb", np.ones(4), mode="vector", k=3))
    with pytest.raises(ValueError, match="needs a text column"):
        pg_sql.keyword_search(T, KeywordSearch("n", "fix"))
    with pytest.raises(ValueError, match="no column"):
        pg_sql.vector_search(T, VectorSearch("emb", np.ones(3), mode="vector", select=("nope",)))


# --- golden backend statements: access method, writer lock, bookkeeping, snapshots -----------------
# No pg_deeplake test has these: they are core PostgreSQL (advisory locks, pg_catalog, heap tables),
# run for real by dlk_assets_tests/test_deeplake_pg.py on a local PostgreSQL 15.

def test_create_table_takes_an_access_method_for_plain_postgres():
    deeplake_form = pg_sql.create_table(T)
    assert pg_sql.create_table(T, access_method="deeplake") == deeplake_form
    assert pg_sql.create_table(T, access_method="heap") == (deeplake_form.sql.replace("USING deeplake", "USING heap"), ())
    for bad in ("heap; DROP TABLE x", "Heap", "select", ""):
        with pytest.raises(ValueError, match="access method"):
            pg_sql.create_table(T, access_method=bad)


def test_writer_lock_statements():
    # A fixed key per qualified name (it must agree across machines and releases), signed 64-bit.
    assert pg_sql.lock_table(T) == ("SELECT pg_advisory_xact_lock(%s)", (-7442138333926550745,))
    assert pg_sql.advisory_lock_key('dlk table "ws"."docs"') == -7442138333926550745
    assert pg_sql.lock_workspace("ws") == ("SELECT pg_advisory_xact_lock(%s)", (-660947052943852621,))
    dotted = [pg_sql.lock_table(PgTable(TableSchema(name, ()), ws)).params for ws, name in (("a.b", "c"), ("a", "b.c"))]
    assert dotted[0] != dotted[1]
    assert all(-2**63 <= pg_sql.advisory_lock_key(str(i)) < 2**63 for i in range(200))
    assert pg_sql.set_lock_timeout(0.25) == ("SELECT set_config('lock_timeout', %s, true)", ("250ms",))
    assert pg_sql.set_lock_timeout(900).params == ("900000ms",)
    for bad in (0, 0.0004, -1, float("nan"), float("inf")):  # 0 means "wait forever" to PostgreSQL
        with pytest.raises(ValueError, match="at least 1 ms"):
            pg_sql.set_lock_timeout(bad)


def test_existing_relations():
    assert pg_sql.existing_relations("ws", ["docs", "dlk_table_tags"]) == (
        ("SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname IN (%s, %s) ORDER BY c.relname"), ("ws", "docs", "dlk_table_tags"))
    with pytest.raises(ValueError, match="at least one name"):
        pg_sql.existing_relations("ws", [])


def test_bookkeeping_statements():
    assert pg_sql.create_bookkeeping("ws") == [
        ('CREATE SCHEMA IF NOT EXISTS "ws"', ()),
        ('CREATE SEQUENCE IF NOT EXISTS "ws"."dlk_table_version_seq"', ()),
        (('CREATE TABLE IF NOT EXISTS "ws"."dlk_table_versions" (table_name TEXT PRIMARY KEY, version BIGINT NOT NULL, '
         "message TEXT NOT NULL DEFAULT '', changed_at TIMESTAMPTZ NOT NULL DEFAULT now()) USING heap"), ()),
        (('CREATE TABLE IF NOT EXISTS "ws"."dlk_table_tags" (table_name TEXT NOT NULL, tag TEXT NOT NULL, '
         "version BIGINT NOT NULL, snapshot_table TEXT NOT NULL, tagged_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
         "PRIMARY KEY (table_name, tag)) USING heap"), ()),
        (('CREATE TABLE IF NOT EXISTS "ws"."dlk_files" (file_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, '
          "size BIGINT NOT NULL, filename TEXT NOT NULL, content_type TEXT NOT NULL, "
          "uploaded_at TIMESTAMPTZ NOT NULL DEFAULT now()) USING heap"), ()),
    ]
    assert pg_sql.remember_file("ws", ("id-1", "ab" * 32, 3, "a.png", "image/png")) == (
        ('INSERT INTO "ws"."dlk_files" (file_id, sha256, size, filename, content_type) VALUES (%s, %s, %s, %s, %s) '
         "ON CONFLICT DO NOTHING"), ("id-1", "ab" * 32, 3, "a.png", "image/png"))
    assert pg_sql.file_record("ws", "sha256", "ab" * 32) == (
        'SELECT file_id, sha256, size, filename, content_type FROM "ws"."dlk_files" WHERE sha256 = %s', ("ab" * 32,))
    with pytest.raises(ValueError):
        pg_sql.file_record("ws", "filename; DROP", "x")
    assert pg_sql.bump_version("ws", "docs", "replace p1") == (
        ('INSERT INTO "ws"."dlk_table_versions" (table_name, version, message, changed_at) VALUES (%s, nextval(%s), %s, now()) '
        "ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version, message = EXCLUDED.message, "
        "changed_at = EXCLUDED.changed_at RETURNING version"), ("docs", '"ws"."dlk_table_version_seq"', "replace p1"))
    assert pg_sql.table_version("ws", "docs") == (
        'SELECT version FROM "ws"."dlk_table_versions" WHERE table_name = %s', ("docs",))
    assert pg_sql.table_tag("ws", "docs", "v1") == (
        'SELECT version, snapshot_table FROM "ws"."dlk_table_tags" WHERE table_name = %s AND tag = %s', ("docs", "v1"))
    assert pg_sql.table_tags("ws", "docs") == (
        'SELECT tag, version, snapshot_table FROM "ws"."dlk_table_tags" WHERE table_name = %s ORDER BY tag', ("docs",))
    assert pg_sql.snapshot_of_version("ws", "docs", 7) == (
        'SELECT snapshot_table FROM "ws"."dlk_table_tags" WHERE table_name = %s AND version = %s ORDER BY tag LIMIT 1',
        ("docs", 7))
    assert pg_sql.record_tag("ws", "docs", "v1", 7, "docs__tag__3bfc269594") == (
        'INSERT INTO "ws"."dlk_table_tags" (table_name, tag, version, snapshot_table) VALUES (%s, %s, %s, %s)',
        ("docs", "v1", 7, "docs__tag__3bfc269594"))
    assert pg_sql.snapshot_tables("ws") == (
        'SELECT DISTINCT snapshot_table FROM "ws"."dlk_table_tags" ORDER BY snapshot_table', ())
    assert pg_sql.forget_table("ws", "docs") == [
        ('DELETE FROM "ws"."dlk_table_tags" WHERE table_name = %s', ("docs",)),
        ('DELETE FROM "ws"."dlk_table_versions" WHERE table_name = %s', ("docs",))]
    for statement in (pg_sql.bump_version("ws", HOSTILE, HOSTILE), pg_sql.record_tag("ws", HOSTILE, HOSTILE, 1, HOSTILE),
                      pg_sql.table_tag("ws", HOSTILE, HOSTILE)):
        assert "O'Brien" not in statement.sql and statement.sql.count("%s") == len(statement.params)
    with pytest.raises(ValueError, match="placeholder"):
        pg_sql.create_bookkeeping("50%")


def test_tag_table_names_fit_postgres():
    assert pg_sql.tag_table_name("docs", "v1") == "docs__tag__3bfc269594"  # sha256("v1")[:10]
    assert pg_sql.tag_table_name("docs", "v2") != pg_sql.tag_table_name("docs", "v1")
    long_names = [pg_sql.tag_table_name("t" * 60 + end, "v1") for end in ("a", "b")]
    assert all(name.startswith("t" * 46 + "__tag__") for name in long_names)
    assert len(set(long_names)) == 2 and all(len(name.encode()) == 63 for name in long_names)
    wide = pg_sql.tag_table_name("é" * 30, "v1")  # cut on a character boundary, not inside one
    assert wide.startswith("é" * 23 + "__tag__") and len(wide.encode()) <= 63


def test_copy_rows_into_a_snapshot():
    snapshot = PgTable(DOCS, "ws", name="docs__tag__3bfc269594")
    columns = '"row_key", "partition", "task", "n", "x", "meta", "ids", "boxes", "emb", "mv"'
    assert pg_sql.copy_rows(T, snapshot) == (
        f'INSERT INTO "ws"."docs__tag__3bfc269594" ({columns}) SELECT {columns} FROM "ws"."docs"', ())

# --- hostile input ---------------------------------------------------------------------------------

def test_hostile_strings_stay_in_params():
    rows = [_doc(HOSTILE, task=HOSTILE, meta={HOSTILE: HOSTILE})]
    key_filter = BoolOp("OR", (Comparison("task", "==", HOSTILE), Comparison("meta", "!=", HOSTILE, key=HOSTILE)))
    statements = [
        *pg_sql.replace_partition(T, HOSTILE, rows),
        pg_sql.select_partition(T, HOSTILE),
        pg_sql.select_rows(T, [HOSTILE, "plain"]),
        pg_sql.select_where(T, key_filter),
        pg_sql.count_rows(T, HOSTILE),
        pg_sql.vector_search(T, VectorSearch("emb", np.ones(3), mode="vector", where=key_filter)),
        pg_sql.keyword_search(T, KeywordSearch("task", HOSTILE), where=key_filter),
        pg_sql.hybrid_search(T, vector_column="emb", query=np.ones(3), text_column="task", text=HOSTILE),
    ]
    for statement in statements:
        assert all(part not in statement.sql for part in ("O'Brien", "DROP TABLE", "ünïcødé", "\\"))
        assert any(HOSTILE in str(param) for param in statement.params)
        assert statement.sql.count("%s") == len(statement.params)


def test_identifiers_are_quoted_or_refused():
    odd = TableSchema('we"ird; DROP TABLE x; --', (Column('c"ol', Kind.TEXT), Column("emb", Kind.VECTOR, dim=3)))
    table = PgTable(odd, 'w"s')
    created = pg_sql.create_table(table)
    assert created.sql.startswith('CREATE TABLE IF NOT EXISTS "w""s"."we""ird; DROP TABLE x; --" (')
    assert '"c""ol" TEXT' in created.sql
    for statement in (created, pg_sql.drop_table(table), pg_sql.create_index(table, "c\"ol", "bm25"),
                      pg_sql.select_where(table, Comparison('c"ol', "==", "x"))):
        assert ";" not in _sql_outside_quotes(statement.sql)
    for name in ("a\x00b", "50%s", "50%"):
        with pytest.raises(ValueError, match="NUL|placeholder"):
            pg_sql.quote_identifier(name)
        with pytest.raises(ValueError):
            pg_sql.create_table(PgTable(TableSchema(name, ()), "ws"))
    with pytest.raises(ValueError, match="non-empty"):
        pg_sql.quote_identifier("")
    with pytest.raises(ValueError, match="truncate"):
        pg_sql.create_table(PgTable(TableSchema("t" * 64, ()), "ws"))
    # A `<#>` operand is written bare, so only a plain lower-case, non-reserved name may be searched.
    for column in ("Emb", "e mb", "order"):
        searchable = TableSchema("t", (Column(column, Kind.VECTOR, dim=3),))
        with pytest.raises(ValueError, match="cannot be searched"):
            pg_sql.vector_search(PgTable(searchable), VectorSearch(column, np.ones(3), mode="vector"))


# --- vector literals -------------------------------------------------------------------------------

def test_vector_literals_are_float32_exact():
    values = np.random.default_rng(3).normal(size=64).astype(np.float32) * np.float32(1e3)
    values[:4] = [0.1, 1e-5, -0.0, 3.4028235e38]
    literal = pg_sql.vector_literal(values, "emb")
    assert literal.startswith("ARRAY[0.1,1e-05,-0.0,3.4028235e+38,") and literal.endswith("]::float4[]")
    parsed = np.array(literal[len("ARRAY["):-len("]::float4[]")].split(","), dtype=np.float32)
    assert parsed.tobytes() == values.tobytes()
    assert pg_sql.vector_literal([[1, 2], [3, 4.5]], "mv") == "ARRAY[ARRAY[1.0,2.0],ARRAY[3.0,4.5]]::float4[][]"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_vectors_are_refused(bad):
    with pytest.raises(ValueError, match=r"column 'emb'.*1 non-finite"):
        pg_sql.vector_literal([0.1, bad, 0.3], "emb")
    with pytest.raises(ValueError, match=r"column 'emb'.*non-finite"):
        pg_sql.vector_search(T, VectorSearch("emb", np.array([0.1, bad, 0.3]), mode="vector"))
    with pytest.raises(ValueError, match=r"column 'mv'.*non-finite"):
        pg_sql.vector_search(T, VectorSearch("mv", np.full((2, 8), bad)))
    with pytest.raises(ValueError, match=r"column 'emb'.*non-finite"):
        pg_sql.hybrid_search(T, vector_column="emb", query=[bad, 0, 0], text_column="task", text="a")
    with pytest.raises(ValueError, match="non-empty"):
        pg_sql.vector_literal([], "emb")


# --- execution by the embedded engine's Postgres dialect -------------------------------------------

TASKS = (
    # BM25 data: each matching row holds a different number of the query words (4, 3, 2, 1), since the
    # dialect's text `<#>` scores by that count.
    "login token timeout crash in mobile app",
    "add dark mode to the settings page",
    "login token timeout error on web portal",
    "refactor database connection pool for workers",
    "login token rotation for admin api users",
    "panic when parsing an empty config file",
    "login page redesign for the new brand",
    "document the deployment pipeline for staging",
    "slow query in monthly report generation job",
    "memory leak in the image thumbnail cache",
)
LOCAL = TableSchema("tasks", (Column("task", Kind.TEXT), Column("topic", Kind.TEXT), Column("n", Kind.INT),
                              Column("emb", Kind.VECTOR, dim=8)))


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    """A local-backend table (two partitions, a bm25 index) and the same table as the SQL sees it."""
    rng = np.random.default_rng(7)
    rows = [{"row_key": f"task-{i:02d}", "task": text, "topic": "auth" if "login" in text else "other", "n": i,
             "emb": rng.normal(size=8).astype(np.float32)} for i, text in enumerate(TASKS)]
    rows.append({"row_key": HOSTILE, "task": "quiet row", "topic": HOSTILE, "n": 99,
                 "emb": rng.normal(size=8).astype(np.float32)})
    table = LocalDeepLake(tmp_path_factory.mktemp("lake")).table(LOCAL)
    table.replace_partition("p1", rows[:5], "first half")
    table.replace_partition("p2", rows[5:], "second half")
    table.create_index("task", "bm25")
    return table, PgTable(LOCAL, name=table.url)


def run_local(statement: Statement) -> dict[str, list[Any]]:
    """Run a generated SELECT with the embedded engine's Postgres dialect; columns by name."""
    result = deeplake.query(inline_params(statement), dialect="postgres")
    return {column.name: list(result[column.name][:]) for column in result.schema.columns}


def test_cosine_select_runs_and_ranks_like_tql(local_table):
    table, pg = local_table
    search = VectorSearch("emb", np.random.default_rng(11).normal(size=8).astype(np.float32), mode="vector", k=5,
                          select=("topic", "n"))
    expected = table.search(search)
    got = run_local(pg_sql.vector_search(pg, search))
    assert got["row_key"] == [hit.row_key for hit in expected]
    assert got["topic"] == [hit.values["topic"] for hit in expected]
    np.testing.assert_allclose(np.asarray(got["score"], dtype=float), [hit.score for hit in expected], atol=1e-5)
    assert expected[0].score > expected[-1].score  # best first on both paths

    unscored = run_local(pg_sql.vector_search(pg, VectorSearch("emb", search.query, mode="vector", k=5,
                                                               with_scores=False)))
    assert unscored["row_key"] == got["row_key"] and "score" not in unscored


def test_filtered_cosine_select_runs_and_ranks_like_tql(local_table):
    table, pg = local_table
    # k covers the table: the dialect applies LIMIT before WHERE (see the module docstring).
    search = VectorSearch("emb", np.random.default_rng(12).normal(size=8).astype(np.float32), mode="vector",
                          k=len(table), where=parse_filter("n >= 3 AND topic = 'other' AND partition != 'p0'"))
    expected = [hit.row_key for hit in table.search(search)]
    assert 0 < len(expected) < len(table)
    assert run_local(pg_sql.vector_search(pg, search))["row_key"] == expected


def test_bm25_select_runs_and_ranks_like_tql(local_table):
    table, pg = local_table
    search = KeywordSearch("task", "login token timeout crash", k=4, select=("topic",))
    expected = [hit.row_key for hit in table.keyword_search(search)]
    assert expected == ["task-00", "task-02", "task-04", "task-06"]
    got = run_local(pg_sql.keyword_search(pg, search))
    assert got["row_key"] == expected
    assert got["score"] == sorted(got["score"], reverse=True)


def test_hostile_text_runs_as_data(local_table):
    table, pg = local_table
    found = run_local(pg_sql.select_where(pg, parse_filter("topic = '" + HOSTILE.replace("'", "''") + "'"),
                                          ("topic",)))
    assert found == {"row_key": [HOSTILE], "topic": [HOSTILE]}
    assert run_local(pg_sql.keyword_search(pg, KeywordSearch("task", HOSTILE, k=3)))["row_key"] == []
    assert len(table) == len(TASKS) + 1


def test_reads_run_and_agree_with_the_local_backend(local_table):
    table, pg = local_table
    assert run_local(pg_sql.select_partition(pg, "p1", ("n",)))["row_key"] == \
        [row["row_key"] for row in table.read_partition("p1")]
    keys = ["task-07", HOSTILE, "absent", "task-01"]
    got = run_local(pg_sql.select_rows(pg, keys, ("partition",)))
    assert dict(zip(got["row_key"], got["partition"])) == table.partitions_of(keys)
    counts = run_local(pg_sql.partition_counts(pg))
    assert dict(zip(counts["partition"], map(int, counts["rows"]))) == table.partition_counts()
    where = parse_filter("n < 4 OR topic = 'auth'")
    assert run_local(pg_sql.select_where(pg, where))["row_key"] == [row["row_key"] for row in table.read_where(where)]


def test_index_types_are_the_ones_the_deeplake_managed_client_knows():
    """Every type this module writes is one pg_deeplake takes, as the `deeplake` package's managed client
    lists them (its `normalize_index_type` is what canonicalizes here too)."""
    written = {kind for kinds in pg_sql.INDEX_TYPES_BY_KIND.values() for kind in kinds}
    assert {pg_sql.managed_index_type(kind) for kind in written} <= set(deeplake.managed.INDEX_TYPES)
    assert [pg_sql.normalize_index_type(name) for name in ("inverted_index", "INVERTED", "exact", "bm25", "brand_new")] == [
        "inverted", "inverted", "exact_text", "bm25", "brand_new"]
    with pytest.raises(ValueError, match="does not fit column"):
        pg_sql.create_index(T, "task", "brand_new")
