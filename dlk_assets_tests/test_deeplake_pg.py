"""The Deep Lake PG backend (`dlk_assets/lake/deeplake_pg.py`) against a real PostgreSQL 15.

A throwaway cluster on 127.0.0.1 (Debian's server binaries, as in test_postgres_instance.py) runs
every statement the backend sends. Plain PostgreSQL has no `deeplake` table access method, so the
lake is built with `access_method="heap"`; everything else is the production code path: the pool,
client-side binding, the advisory writer lock, the bookkeeping tables, snapshots, the visibility poll.

What plain PostgreSQL cannot run is checked differently:
- `create_index`, `search`, `keyword_search` and `explain` run here until the server refuses the
  pg_deeplake part (`USING deeplake_index`, the `<#>` operator), with a stand-in
  `public.pg_deeplake_metadata` catalog so `indexes()` has something to read. The refused statement's
  exact text, parameters bound client-side, is read back from the server's log (PostgreSQL logs every
  statement that fails), so the test proves what the backend sends; that this SQL is what pg_deeplake
  accepts rests on the golden tests in test_pg_sql.py (pinned to pg_deeplake's own tests).
- What the backend makes of a ranked result (ranks, float scores, selected values converted, filters,
  best first, BM25 hits without a score) runs against a stand-in `<#>` operator (cosine, MaxSim of dot
  products, query words matched) in a schema only that test's lake sees; pg_deeplake's own scoring is
  not run here.
- Not run here at all: index copying into tag snapshots (only with `access_method="deeplake"`) and
  pg_deeplake's real visibility delay, which is simulated with a trigger that hides new rows until
  another session puts them back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import threading
import time

import numpy as np
import psycopg
import pytest

from dlk_assets.lake import pg_sql
from dlk_assets.lake.deeplake_pg import DeepLakePg, RowsNotVisibleError, pg_conninfo
from dlk_assets.lake.locks import TableLockTimeout
from dlk_assets.lake.schema import Column, Kind, TableSchema, UnknownColumnError
from dlk_assets.lake.tables import PartitionShrinkError
from dlk_assets.lake.validation import RowValidationError
from dlk_assets.local_postgres import (
    DATABASE,
    ROLE,
)
from dlk_assets.retrieval.filters import BoolOp, Comparison, parse_filter
from dlk_assets.retrieval.requests import KeywordSearch, VectorSearch

from .local_servers import throwaway_postgres
from .pg_writers import EVENTS, event_rows
from .writers import gather_outcomes

HOSTILE = "O'Brien \\ \"q\" ünïcødé 😀 '; DROP TABLE x; --"
DOCS = TableSchema("docs", (
    Column("task", Kind.TEXT), Column("n", Kind.INT), Column("x", Kind.FLOAT), Column("meta", Kind.JSON),
    Column("ids", Kind.INT_LIST), Column("boxes", Kind.BOXES), Column("emb", Kind.VECTOR, dim=3),
    Column("mv", Kind.MULTI_VECTOR, dim=8),
))
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def cluster():
    with throwaway_postgres() as running:
        yield running


@pytest.fixture
def conninfo(cluster) -> str:
    return pg_conninfo("127.0.0.1", cluster.port, ROLE, cluster.password, DATABASE, sslmode="disable")


@pytest.fixture
def workspace(request) -> str:
    """A schema of its own per test (the cluster is shared by the module)."""
    return "ws_" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]


@pytest.fixture
def lake(conninfo, workspace):
    lake = DeepLakePg(conninfo, workspace, access_method="heap", visibility_timeout_s=2.0)
    yield lake
    lake.close()


def sql(conninfo: str, query: str, *params) -> list[tuple]:
    """Run one statement on a connection of its own (not the lake's pool); its rows, if any."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def doc(key: str, **overrides) -> dict:
    row = {"row_key": key, "task": f"task {key}", "n": 7, "x": 0.1, "meta": {"dataset": "coco", "w": 3},
           "ids": [1, 2], "boxes": [[0.0, 1.0, 2.5, 3.0]], "emb": [0.1, 0.2, 0.3], "mv": np.ones((2, 8), np.float32)}
    row.update(overrides)
    return row


def keys(rows) -> list[str]:
    return [row["row_key"] for row in rows]


# --- connection, names, creation ---------------------------------------------------------------------

def test_conninfo_requires_tls_by_default_and_urls_hold_no_password(conninfo, workspace):
    password = "p w'd\\\"x"
    info = psycopg.conninfo.conninfo_to_dict(pg_conninfo("db.example", 5433, "dlk", password, "lake"))
    assert info == {"host": "db.example", "port": "5433", "user": "dlk", "password": password, "dbname": "lake",
                    "sslmode": "require"}
    lake = DeepLakePg(conninfo, workspace, access_method="heap")
    port = psycopg.conninfo.conninfo_to_dict(conninfo)["port"]
    assert lake.url == f"postgresql://127.0.0.1:{port}/{DATABASE}"
    assert lake.table_url("docs") == f"postgresql://127.0.0.1:{port}/{DATABASE}/{workspace}.docs"
    assert "password" not in repr(lake) and psycopg.conninfo.conninfo_to_dict(conninfo)["password"] not in repr(lake)
    with pytest.raises(ValueError, match="placeholder"):
        DeepLakePg(conninfo, "50%")
    with pytest.raises(ValueError, match="access method"):
        DeepLakePg(conninfo, workspace, access_method="heap; DROP TABLE x")
    with pytest.raises(ValueError, match="pool sizes"):
        DeepLakePg(conninfo, workspace, min_size=3, max_size=2)


def test_tables_are_created_listed_and_gain_added_columns(lake, conninfo, workspace):
    assert lake.table_names() == [] and not lake.exists("docs")
    table = lake.table(DOCS)
    first = table.version
    assert lake.table_names() == ["docs"] and lake.exists("docs")
    assert not lake.exists(pg_sql.VERSIONS_TABLE) and not lake.exists(pg_sql.TAGS_TABLE)  # bookkeeping is no table
    assert table.uri == lake.table_url("docs") and len(table) == 0
    # What the server holds: the table with its access method, the row key as primary key, heap bookkeeping.
    methods = dict(sql(conninfo, "SELECT c.relname, am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                       workspace))
    assert methods == {"docs": "heap", pg_sql.VERSIONS_TABLE: "heap", pg_sql.TAGS_TABLE: "heap", pg_sql.FILES_TABLE: "heap"}
    assert sql(conninfo, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass",
               f'"{workspace}"."docs"') == [("PRIMARY KEY (row_key)",)]

    written = table.replace_partition("p1", [doc("a")], "one row").version
    assert lake.table(DOCS).version == written  # reopening changes nothing
    wider = TableSchema("docs", (*DOCS.columns, Column("caption", Kind.TEXT), Column("score", Kind.INT)))
    widened = lake.table(wider)
    assert int(widened.version) > int(written) > int(first)  # adding columns is a change
    columns = pg_sql.table_columns(pg_sql.PgTable(wider, workspace))
    stored = [name for name, _ in sql(conninfo, columns.sql, *columns.params)]
    assert stored == list(wider.column_names)
    # A row stored before the columns existed reads them as the kind's empty value, as the local backend does.
    assert widened.read_rows(["a"], ("caption", "score")) == {"a": {"row_key": "a", "caption": "", "score": 0}}
    assert lake.table(wider).version == widened.version


def test_hostile_workspace_table_and_column_names_are_quoted(conninfo):
    odd = TableSchema('we"ird; DROP TABLE x; --', (Column('c"ol', Kind.TEXT),))
    lake = DeepLakePg(conninfo, 'w"s -- ', access_method="heap")
    try:
        table = lake.table(odd)
        table.replace_partition(HOSTILE, [{"row_key": HOSTILE, 'c"ol': HOSTILE}], HOSTILE)
        assert table.read_where(Comparison('c"ol', "==", HOSTILE)) == [
            {"row_key": HOSTILE, "partition": HOSTILE, 'c"ol': HOSTILE}]
        assert lake.table_names() == [odd.name]
        assert lake.drop(odd.name) and lake.table_names() == []
    finally:
        lake.close()


# --- values ------------------------------------------------------------------------------------------

def test_rows_read_back_with_the_local_backends_python_types(lake, tmp_path):
    from dlk_assets.lake.deeplake_local import LocalDeepLake

    rng = np.random.default_rng(5)
    rows = [doc(f"k{i}", task=text, n=-(2**62) + i, x=float(rng.normal()), ids=ids, boxes=boxes,
                meta={"nested": {"list": [1, 2.5, None, "ü"]}, HOSTILE: True},
                emb=rng.normal(size=3).astype(np.float32), mv=rng.normal(size=(1 + i, 8)).astype(np.float32))
            for i, (text, ids, boxes) in enumerate([("", [], []), (HOSTILE, [2**62, -1], [[1, 2, 3, 4], [0.5, 0, 0, 0]]),
                                                     ("plain", [0], [[0.1, 0.2, 0.3, 0.4]])])]
    rows.reverse()  # stored out of key order; reads come back in row-key order
    pg_table, local_table = lake.table(DOCS), LocalDeepLake(tmp_path).table(DOCS)
    for table in (pg_table, local_table):
        table.replace_partition("p", rows, "rows")
    got, expected = pg_table.read_partition("p"), local_table.read_partition("p")
    assert keys(got) == keys(expected) == ["k0", "k1", "k2"]
    for pg_row, local_row in zip(got, expected):
        assert pg_row.keys() == local_row.keys()
        for name, value in local_row.items():
            if isinstance(value, np.ndarray):
                assert pg_row[name].dtype == np.float32 and pg_row[name].shape == value.shape
                np.testing.assert_array_equal(pg_row[name], value)
            else:
                assert pg_row[name] == value and type(pg_row[name]) is type(value), name
    assert type(got[1]["ids"][0]) is int and got[1]["ids"] == [2**62, -1]
    assert got[1]["meta"] == {"nested": {"list": [1, 2.5, None, "ü"]}, HOSTILE: True}
    assert got[0]["boxes"] == [] and got[0]["task"] == ""


# --- replace and append --------------------------------------------------------------------------------

def test_replace_partition_replaces_and_refuses_clashes_and_shrinks(lake):
    table = lake.table(DOCS)
    write = table.replace_partition("p1", [doc("a"), doc("b"), doc("c")], "first")
    assert (write.rows_written, write.rows_replaced, write.version) == (3, 0, table.version)
    write = table.replace_partition("p1", [doc("b"), doc("c", n=8), doc("d")], "second")
    assert (write.rows_written, write.rows_replaced) == (3, 3)
    assert keys(table.read_partition("p1")) == ["b", "c", "d"] and table.read_rows(["c"])["c"]["n"] == 8
    version = table.version

    with pytest.raises(RowValidationError, match=r"table 'docs': row 'd' already belongs to partition 'p1'"):
        table.replace_partition("p2", [doc("e"), doc("d")], "clash")
    with pytest.raises(PartitionShrinkError, match="partition 'p1' holds 3 row"):
        table.replace_partition("p1", [doc("b")], "shrink", shrink_allowed=False)
    assert table.partition_counts() == {"p1": 3} and table.version == version
    assert table.replace_partition("p1", [doc("x"), doc("y"), doc("z")], "same size", shrink_allowed=False).rows_written == 3
    assert table.replace_partition("p1", [], "empty it").rows_replaced == 3
    assert table.partition_counts() == {}


def test_a_row_the_server_refuses_rolls_back_the_whole_replace(lake):
    table = lake.table(DOCS)
    table.replace_partition("p1", [doc("old1"), doc("old2")], "before")
    table.replace_partition("p2", [doc("other")], "before")
    version = table.version
    # Row 300 sits in the second INSERT statement (256 rows each): the DELETE and the first INSERT have
    # run when PostgreSQL refuses its JSON (jsonb cannot hold \u0000), and all of it must roll back.
    rows = [doc(f"new{i:03d}") for i in range(400)]
    rows[300] = doc("new300", meta={"note": "nul \x00 inside"})
    with pytest.raises(RowValidationError, match=r"table 'docs', partition 'p1': PostgreSQL refused one of rows "
                                                 r"'new256' … 'new399': unsupported Unicode escape sequence.*rolled back"):
        table.replace_partition("p1", rows, "bad")
    assert keys(table.read_partition("p1")) == ["old1", "old2"] and table.partition_counts() == {"p1": 2, "p2": 1}
    assert table.version == version
    # What PostgreSQL cannot store at all is refused before the transaction, naming row and column.
    with pytest.raises(RowValidationError, match=r"row 'k', column 'task': text contains a NUL"):
        table.replace_partition("p1", [doc("k", task="a\x00b")], "nul")
    with pytest.raises(RowValidationError, match=r"row 'k', column 'x': 1e\+39 does not fit a 32-bit float"):
        table.append("p1", [doc("k", x=1e39)], "overflow")
    with pytest.raises(RowValidationError, match=r"row 'k', column 'emb'.*non-finite"):
        table.replace_partition("p1", [doc("k", emb=[0.0, float("nan"), 1.0])], "nan")
    assert keys(table.read_partition("p1")) == ["old1", "old2"] and table.version == version


def test_append_adds_only_new_keys_and_skips_existing_ones(lake):
    table = lake.table(DOCS)
    assert table.append("p1", [doc("a"), doc("b")], "first").rows_written == 2
    version = table.version
    again = table.append("p1", [doc("a"), doc("b")], "again", skip_existing=True)
    assert (again.rows_written, again.rows_already_present, again.version) == (0, 2, version)
    assert table.version == version  # nothing written, no new version
    more = table.append("p1", [doc("b"), doc("c")], "more", skip_existing=True)
    assert (more.rows_written, more.rows_already_present) == (1, 1) and int(more.version) > int(version)
    with pytest.raises(RowValidationError, match=r"row 'c' already belongs to this partition \('p1'\); append only adds"):
        table.append("p1", [doc("d"), doc("c")], "dup")
    with pytest.raises(RowValidationError, match="row 'a' already belongs to partition 'p1'"):
        table.append("p2", [doc("a")], "elsewhere", skip_existing=True)  # skipping is per partition
    assert table.row_keys("p1") == {"a", "b", "c"} and table.partition_counts() == {"p1": 3}


# --- reads -------------------------------------------------------------------------------------------

def test_reads_by_partition_filter_and_key(lake):
    table = lake.table(DOCS)
    table.replace_partition(HOSTILE, [doc(HOSTILE, task=HOSTILE, n=1, meta={"dataset": HOSTILE, "w": 1}, ids=[5]),
                                      doc("b", n=2, meta={"dataset": "coco", "w": "3"})], "hostile")
    table.replace_partition("p2", [doc("c", n=3, x=0.75, ids=[5, 6]), doc("d", n=4)], "plain")
    assert table.partition_counts() == {HOSTILE: 2, "p2": 2} and len(table) == 4
    assert table.row_keys(HOSTILE) == {HOSTILE, "b"} and table.row_keys("nope") == set()
    assert table.partitions_of(["d", HOSTILE, "absent", "d"]) == {"d": "p2", HOSTILE: HOSTILE}
    assert table.partitions_of([]) == {} and table.read_rows([]) == {}
    assert table.read_partition(HOSTILE, ("task",)) == [{"row_key": HOSTILE, "task": HOSTILE},
                                                        {"row_key": "b", "task": "task b"}]
    assert list(table.read_rows(["d", "absent", HOSTILE], ("n",)).items()) == [
        (HOSTILE, {"row_key": HOSTILE, "n": 1}), ("d", {"row_key": "d", "n": 4})]

    def where(text: str) -> list[str]:
        return keys(table.read_where(parse_filter(text), ("n",)))

    quoted = HOSTILE.replace("'", "''")
    assert where(f"task = '{quoted}'") == [HOSTILE]
    assert where(f"partition != '{quoted}' AND x > 0.5") == ["c"]
    assert where(f"meta.dataset = '{quoted}' OR n >= 4") == [HOSTILE, "d"]
    assert where("meta.w = 3") == ["c", "d"]  # typed JSON lookups: "3" (a string) is not the number 3
    assert where("ids CONTAINS 5") == [HOSTILE, "c"]
    assert table.read_where(BoolOp("AND", (Comparison("meta", "!=", HOSTILE, key=HOSTILE), Comparison("n", "<", 0)))) == []
    assert keys(table.read_where(None)) == sorted([HOSTILE, "b", "c", "d"])
    with pytest.raises(UnknownColumnError, match="no column 'nope'"):
        table.read_partition("p2", ("nope",))


# --- versions, tags, drop --------------------------------------------------------------------------------

def test_version_changes_exactly_when_data_changes(lake, workspace, conninfo):
    table = lake.table(DOCS)
    versions = [table.version]
    table.replace_partition("p1", [], "empty into empty")  # no change
    table.read_partition("p1")
    lake.table(DOCS)
    assert table.version == versions[-1]
    for change in (lambda: table.replace_partition("p1", [doc("a")], "write"),
                   lambda: table.replace_partition("p1", [doc("a", n=9)], "rewrite"),
                   lambda: table.append("p1", [doc("b")], "append"),
                   lambda: table.replace_partition("p1", [], "empty")):
        change()
        versions.append(table.version)
    with pytest.raises(RowValidationError):
        table.append("p1", [doc("c", task="\x00")], "refused")
    table.tag_version("t")
    assert table.version == versions[-1]
    assert [int(v) for v in versions] == sorted({int(v) for v in versions})  # each change a new, larger version
    [(message,)] = sql(conninfo, f'SELECT message FROM "{workspace}".{pg_sql.VERSIONS_TABLE} WHERE table_name = %s', "docs")
    assert message == "empty"


def test_tags_pin_a_frozen_read_only_view(lake, conninfo, workspace):
    table = lake.table(DOCS)
    table.replace_partition("p0", [doc("a"), doc("b")], "v1")
    version = table.tag_version("pinned")
    assert table.tag_version("pinned") == version == table.version  # idempotent
    assert table.tag_version(HOSTILE) == version  # a second tag of the same version shares its snapshot
    table.replace_partition("p0", [doc("a", n=100)], "v2")
    table.replace_partition("p1", [doc("c")], "v3")
    assert table.tag_version("pinned") == version  # still the version it pinned

    pinned = table.open_tag("pinned")
    assert pinned.version == version != table.version and pinned.uri == f"{table.uri}@pinned"
    assert pinned.partition_counts() == {"p0": 2} and table.partition_counts() == {"p0": 1, "p1": 1}
    assert [row["n"] for row in pinned.read_partition("p0")] == [7, 7] and len(pinned) == 2
    assert table.open_tag(HOSTILE).read_rows(["b"], ("n",)) == {"b": {"row_key": "b", "n": 7}}
    snapshots = sql(conninfo, f'SELECT DISTINCT snapshot_table FROM "{workspace}".{pg_sql.TAGS_TABLE}')
    assert snapshots == [(pg_sql.tag_table_name("docs", "pinned"),)]
    assert lake.table_names() == ["docs"]  # snapshots are no tables of the lake
    for write in (lambda: pinned.replace_partition("p0", [], "no"), lambda: pinned.append("p0", [doc("z")], "no"),
                  lambda: pinned.create_index("task", "bm25"), lambda: pinned.tag_version("again")):
        with pytest.raises(PermissionError, match="read-only"):
            write()
    with pytest.raises(KeyError) as missing:
        table.open_tag("missing")
    assert missing.value.args[0] == f"table 'docs' has no tag 'missing' (tags: {HOSTILE}, pinned)"

    # A tag taken before a column was added offers the columns it has.
    wider = lake.table(TableSchema("docs", (*DOCS.columns, Column("caption", Kind.TEXT))))
    old = wider.open_tag("pinned")
    assert "caption" not in old.schema.column_names and keys(old.read_where(None)) == ["a", "b"]
    assert wider.tag_version("wide") != version and wider.open_tag("wide").read_rows(["c"], ("caption",))["c"]["caption"] == ""


def test_drop_removes_the_table_its_snapshots_and_its_bookkeeping(lake, conninfo, workspace):
    table = lake.table(DOCS)
    table.replace_partition("p0", [doc("a")], "v1")
    table.tag_version("t1")
    lake.table(EVENTS).replace_partition("p", event_rows("e", 2), "other table")
    last = int(table.version)
    assert lake.drop("docs") and not lake.drop("docs") and not lake.drop(pg_sql.VERSIONS_TABLE)
    assert lake.table_names() == ["events"] and not lake.exists("docs")
    relations = {r[0] for r in sql(conninfo, "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                                             "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", workspace)}
    assert relations == {"events", pg_sql.VERSIONS_TABLE, pg_sql.TAGS_TABLE, pg_sql.FILES_TABLE}
    assert sql(conninfo, f'SELECT table_name FROM "{workspace}".{pg_sql.VERSIONS_TABLE}') == [("events",)]
    again = lake.table(DOCS)
    assert again.partition_counts() == {} and int(again.version) > last  # versions are never reused
    with pytest.raises(KeyError, match=r"no tag 't1' \(tags: none\)"):
        again.open_tag("t1")


# --- what needs pg_deeplake: the statement reaches the server ---------------------------------------------

def refused_statement(cluster, conninfo: str, statement: pg_sql.Statement) -> str:
    """The server log line of a refused statement, as the backend's client-side binding sends it.

    PostgreSQL logs the text of every statement that fails (`log_min_error_statement = error`)."""
    with psycopg.connect(conninfo) as connection:
        sent = psycopg.ClientCursor(connection).mogrify(statement.sql, statement.params)
    line = f"STATEMENT:  {sent}\n"
    assert line in (cluster.data_dir / "server.log").read_text(), f"not sent: {sent}"
    return sent


def test_indexes_and_searches_send_pg_deeplake_statements(lake, cluster, conninfo, workspace):
    # pg_deeplake's catalog, stood in for by an ordinary table, so `indexes()` has something to read.
    sql(conninfo, "CREATE TABLE IF NOT EXISTS public.pg_deeplake_metadata (table_name TEXT, column_name TEXT, "
                  "index_name TEXT, index_type TEXT)")
    table = lake.table(DOCS)
    pg = pg_sql.PgTable(DOCS, workspace)
    table.replace_partition("p", [doc("a")], "one row")
    version = table.version
    assert table.indexes() == {}
    with pytest.raises(psycopg.errors.UndefinedObject, match='access method "deeplake_index" does not exist'):
        table.create_index("task", "bm25")
    assert refused_statement(cluster, conninfo, pg_sql.create_index(pg, "task", "bm25")) == (
        f'CREATE INDEX "idx_docs_task" ON "{workspace}"."docs" USING deeplake_index ("task" DESC) '
        "WITH (index_type = 'bm25')")
    sql(conninfo, "INSERT INTO public.pg_deeplake_metadata VALUES (%s, 'task', 'idx_docs_task', 'bm25'), "
                  "(%s, 'n', 'idx_docs_n', 'inverted_index')", f"{workspace}.docs", f"{workspace}.docs")
    assert table.indexes() == {"task": "bm25", "n": "inverted"}  # catalog spellings normalized
    assert table.create_index("task", "bm25") is False  # already there: nothing sent
    with pytest.raises(pg_sql.IndexExistsError, match="one index per column"):
        table.create_index("task", "exact_text")
    with pytest.raises(ValueError, match="divisible by 8|multi-vector"):
        table.create_index("emb", "pooled_quantized")

    keyword = KeywordSearch("task", "fix 'login'", k=3, select=("n",))
    with pytest.raises(psycopg.errors.UndefinedFunction, match=r"operator does not exist: text <#> unknown"):
        table.keyword_search(keyword)
    # bm25-indexed: pg_deeplake's index-served form (a bare ORDER BY, as its tests assert an index scan for)
    assert refused_statement(cluster, conninfo, pg_sql.keyword_search(pg, keyword, with_scores=False, indexed=True)) == (
        f'SELECT "row_key", "n" FROM "{workspace}"."docs" ORDER BY task <#> \'fix \'\'login\'\'\' LIMIT 3')
    with pytest.raises(LookupError, match="needs a bm25 index on docs.meta"):
        table.keyword_search(KeywordSearch("meta", "x"))
    for search in (VectorSearch("emb", np.array([0.5, 0, 1], np.float32), mode="vector", k=2, where=parse_filter("n > 1"),
                                select=("task",)),
                   VectorSearch("mv", np.ones((2, 8), np.float32), k=2)):
        with pytest.raises(psycopg.errors.UndefinedFunction, match=r"operator does not exist: real\[\] <#> real\[\]"):
            table.search(search)
        # A cosine search over-fetches candidates with their vectors for the exact re-rank.
        sent = search if search.mode == "maxsim" else dataclasses.replace(search, k=100, select=(*search.select, "emb"), with_scores=False)
        refused_statement(cluster, conninfo, pg_sql.vector_search(pg, sent))
        with pytest.raises(psycopg.errors.UndefinedFunction, match="<#>"):
            table.explain(search)
        refused_statement(cluster, conninfo, pg_sql.explain(pg_sql.vector_search(pg, search)))
    assert refused_statement(cluster, conninfo, pg_sql.vector_search(pg, VectorSearch(
        "emb", np.array([0.5, 0, 1], np.float32), mode="vector", k=100, where=parse_filter("n > 1"), select=("task", "emb"),
        with_scores=False))) == (
        f'SELECT "row_key", "task", "emb" FROM "{workspace}"."docs" '
        'WHERE "n" > 1 ORDER BY emb <#> ARRAY[0.5,0.0,1.0]::float4[] DESC LIMIT 100')
    # Once the vector column has its clustered index, searches and the index check's EXPLAIN take the
    # index-served form (no DESC), which pg_deeplake answers with an index scan.
    sql(conninfo, "INSERT INTO public.pg_deeplake_metadata VALUES (%s, 'emb', 'idx_docs_emb', 'clustered')", f"{workspace}.docs")
    indexed = VectorSearch("emb", np.array([0.5, 0, 1], np.float32), mode="vector", k=2, select=("task",))
    for call in (table.search, table.explain):
        with pytest.raises(psycopg.errors.UndefinedFunction, match="<#>"):
            call(indexed)
    assert refused_statement(cluster, conninfo, pg_sql.vector_search(pg, dataclasses.replace(
        indexed, k=100, select=("task", "emb"), with_scores=False), indexed=True)) == (
        f'SELECT "row_key", "task", "emb" FROM "{workspace}"."docs" ORDER BY emb <#> ARRAY[0.5,0.0,1.0]::float4[] LIMIT 100')
    refused_statement(cluster, conninfo, pg_sql.explain(pg_sql.vector_search(pg, indexed, indexed=True)))
    # Failed statements leave the pool usable and change no data.
    assert table.partition_counts() == {"p": 1} and table.version == version


# A stand-in `<#>` in a schema of its own (only a lake whose search_path names it sees it): cosine for
# 1-D float4[], MaxSim (dot products) for 2-D, and for text minus the number of query words a text holds.
# It checks what the backend does with a ranked result, not pg_deeplake's scoring. The text column is
# bm25-indexed in the stand-in catalog, so its search takes the index-served form, a bare ascending
# ORDER BY that pg_deeplake's DESC index answers best first; plain PostgreSQL has no such index, so the
# stand-in's text score is negated to come out in that same order.
STAND_IN_OPERATORS = [
    "CREATE SCHEMA IF NOT EXISTS dlk_stand_in",
    """CREATE OR REPLACE FUNCTION dlk_stand_in.similarity(doc real[], query real[]) RETURNS double precision
       LANGUAGE sql IMMUTABLE AS $$
       SELECT CASE WHEN array_ndims(query) = 1 THEN
           (SELECT sum(d * q) / sqrt(sum(d * d) * sum(q * q)) FROM unnest(doc, query) AS pair(d, q))
       ELSE
           (SELECT sum(best) FROM (SELECT max(dot) AS best FROM (
               SELECT qi, di, sum(query[qi][k] * doc[di][k]) AS dot FROM generate_subscripts(query, 1) qi,
                   generate_subscripts(doc, 1) di, generate_subscripts(doc, 2) k GROUP BY qi, di) dots GROUP BY qi) bests)
       END $$""",
    r"""CREATE OR REPLACE FUNCTION dlk_stand_in.matches(doc text, query text) RETURNS double precision
       LANGUAGE sql IMMUTABLE AS $$
       SELECT -count(*)::double precision FROM regexp_split_to_table(lower(query), '\s+') AS word
       WHERE word = ANY(regexp_split_to_array(lower(doc), '\s+')) $$""",
    "DROP OPERATOR IF EXISTS dlk_stand_in.<#> (real[], real[])",
    "DROP OPERATOR IF EXISTS dlk_stand_in.<#> (text, text)",
    "CREATE OPERATOR dlk_stand_in.<#> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = dlk_stand_in.similarity)",
    "CREATE OPERATOR dlk_stand_in.<#> (LEFTARG = text, RIGHTARG = text, FUNCTION = dlk_stand_in.matches)",
]


def test_search_hits_are_ranked_and_converted_like_the_local_backends(conninfo, workspace):
    for statement in STAND_IN_OPERATORS:
        sql(conninfo, statement)
    sql(conninfo, "CREATE TABLE IF NOT EXISTS public.pg_deeplake_metadata (table_name TEXT, column_name TEXT, "
                  "index_name TEXT, index_type TEXT)")
    sql(conninfo, "INSERT INTO public.pg_deeplake_metadata VALUES (%s, 'task', 'idx_docs_task', 'bm25')", f"{workspace}.docs")
    # jit off: the stand-in's subscript joins are estimated huge, and compiling them costs ~0.3 s a query.
    searching = psycopg.conninfo.make_conninfo(conninfo, options="-c search_path=public,dlk_stand_in -c jit=off")
    lake = DeepLakePg(searching, workspace, access_method="heap")
    try:
        rng = np.random.default_rng(9)
        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
        rows = [doc(f"k{i}", n=i, task=" ".join(words[i:]), emb=rng.normal(size=3).astype(np.float32),
                    mv=rng.normal(size=(1 + i % 3, 8)).astype(np.float32), meta={"i": i}) for i in range(6)]
        table = lake.table(DOCS)
        table.replace_partition("p", rows, "rows")

        query = rng.normal(size=3).astype(np.float32)
        cosine = {r["row_key"]: float(r["emb"] @ query / np.linalg.norm(r["emb"]) / np.linalg.norm(query)) for r in rows}
        hits = table.search(VectorSearch("emb", query, mode="vector", k=3, where=parse_filter("n >= 1"),
                                         select=("meta", "emb", "row_key")))
        expected = sorted((key for key in cosine if key != "k0"), key=cosine.get, reverse=True)[:3]
        assert [(h.rank, h.row_key) for h in hits] == list(enumerate(expected, start=1))
        np.testing.assert_allclose([h.score for h in hits], [cosine[k] for k in expected], rtol=1e-5)
        assert all(type(h.score) is float and list(h.values) == ["meta", "emb"] for h in hits)
        by_key = {r["row_key"]: r for r in rows}
        assert hits[0].values["meta"] == by_key[expected[0]]["meta"] and hits[0].values["emb"].dtype == np.float32
        np.testing.assert_array_equal(hits[0].values["emb"], by_key[expected[0]]["emb"])
        unscored = table.search(VectorSearch("emb", query, mode="vector", k=3, where=parse_filter("n >= 1"),
                                             with_scores=False))
        assert [h.row_key for h in unscored] == expected and {h.score for h in unscored} == {None}

        tokens = rng.normal(size=(2, 8)).astype(np.float32)
        maxsim = {r["row_key"]: float((tokens @ r["mv"].T).max(axis=1).sum()) for r in rows}
        assert [h.row_key for h in table.search(VectorSearch("mv", tokens, k=6))] == sorted(maxsim, key=maxsim.get,
                                                                                              reverse=True)
        # Row i holds words[i:], so the query's words match 6, 5, 4, … times: no ties.
        keyword = table.keyword_search(KeywordSearch("task", " ".join(reversed(words)), k=4, select=("n",)))
        assert [(h.rank, h.row_key, h.score, h.values) for h in keyword] == [
            (1, "k0", None, {"n": 0}), (2, "k1", None, {"n": 1}), (3, "k2", None, {"n": 2}), (4, "k3", None, {"n": 3})]
        assert "Sort Key" in table.explain(VectorSearch("emb", query, mode="vector", k=3))
    finally:
        lake.close()


# --- visibility ------------------------------------------------------------------------------------------

def _hide_inserted_rows(conninfo: str, workspace: str) -> None:
    """Make new rows of `docs` invisible: a trigger moves each into a side table (what a slow
    pg_deeplake looks like to a SELECT); `_reveal` puts them back from a session without triggers."""
    sql(conninfo, f'CREATE TABLE "{workspace}".hidden (LIKE "{workspace}".docs)')
    sql(conninfo, f'CREATE FUNCTION "{workspace}".hide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
                  f'INSERT INTO "{workspace}".hidden SELECT NEW.*; DELETE FROM "{workspace}".docs WHERE row_key = NEW.row_key; '
                  "RETURN NULL; END $$")
    sql(conninfo, f'CREATE TRIGGER hide AFTER INSERT ON "{workspace}".docs FOR EACH ROW EXECUTE FUNCTION "{workspace}".hide()')


def _reveal(conninfo: str, workspace: str, after_s: float) -> None:
    time.sleep(after_s)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SET session_replication_role = replica")  # no triggers in this session
        connection.execute(f'WITH moved AS (DELETE FROM "{workspace}".hidden RETURNING *) '
                           f'INSERT INTO "{workspace}".docs SELECT * FROM moved')


def test_a_write_waits_until_its_rows_are_visible(conninfo, workspace):
    lake = DeepLakePg(conninfo, workspace, access_method="heap", visibility_timeout_s=5.0)
    try:
        table = lake.table(DOCS)
        _hide_inserted_rows(conninfo, workspace)
        revealer = threading.Thread(target=_reveal, args=(conninfo, workspace, 0.4))
        started = time.monotonic()
        revealer.start()
        write = table.replace_partition("p1", [doc("a"), doc("b")], "late")
        waited = time.monotonic() - started
        revealer.join()
        assert 0.4 <= waited < 3 and write.rows_written == 2
        assert keys(table.read_partition("p1")) == ["a", "b"]
    finally:
        lake.close()


def test_rows_that_never_become_visible_raise_naming_table_and_partition(conninfo, workspace):
    lake = DeepLakePg(conninfo, workspace, access_method="heap", visibility_timeout_s=0.3)
    try:
        table = lake.table(DOCS)
        _hide_inserted_rows(conninfo, workspace)
        started = time.monotonic()
        with pytest.raises(RowsNotVisibleError, match=r"table 'docs', partition 'p1': the write is committed "
                                                      r"\(1 row\(s\), version \d+\) but after 0.3 s SELECTs show 0"):
            table.append("p1", [doc("a")], "never seen")
        assert time.monotonic() - started < 2
    finally:
        lake.close()


# --- the writer lock -------------------------------------------------------------------------------------

def _hold_lock(conninfo: str, workspace: str, schema: TableSchema) -> psycopg.Connection:
    """A session holding the table's writer lock (the key the backend locks) until it unlocks."""
    connection = psycopg.connect(conninfo, autocommit=True)
    connection.execute("SELECT pg_advisory_lock(%s)", pg_sql.lock_table(pg_sql.PgTable(schema, workspace)).params)
    return connection


def _wait_for_waiters(conninfo: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while sql(conninfo, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0][0] < count:
        assert time.monotonic() < deadline, "the writers never queued on the advisory lock"
        time.sleep(0.05)


def _race(conninfo: str, workspace: str, writes: list[tuple[str, str, list[dict]]]) -> dict[str, tuple[str, str]]:
    """Start one writer process per (name, partition, rows) while the test holds the table's lock;
    release it once all of them wait on it."""
    from .pg_writers import replace_rows

    holder = _hold_lock(conninfo, workspace, EVENTS)
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=replace_rows, args=(conninfo, workspace, name, partition, rows, results))
                 for name, partition, rows in writes]
    try:
        for process in processes:
            process.start()
        _wait_for_waiters(conninfo, len(processes))
    finally:
        holder.execute("SELECT pg_advisory_unlock_all()")
        holder.close()
    return gather_outcomes(processes, results, wait_s=60)


def test_two_writers_replacing_one_partition_leave_one_writers_rows(lake, conninfo, workspace):
    table = lake.table(EVENTS)
    table.replace_partition("p", event_rows("before", 5), "before")
    before = int(table.version)
    outcomes = _race(conninfo, workspace, [("w1", "p", event_rows("w1", 40)), ("w2", "p", event_rows("w2", 30))])
    assert outcomes == {"w1": ("ok", ""), "w2": ("ok", "")}
    stored = table.read_partition("p")
    writers = {row["row_key"].split(":")[0] for row in stored}
    assert len(writers) == 1, writers  # never a mix
    assert stored == [{**row, "partition": "p"} for row in event_rows(writers.pop(), len(stored))]
    assert len(stored) in (40, 30)
    assert int(table.version) > before


def test_two_writers_of_one_key_into_two_partitions_one_wins(lake, conninfo, workspace):
    # Neither the table nor its bookkeeping exist yet: both writers also create them at the same moment.
    shared = event_rows("shared", 1)
    outcomes = _race(conninfo, workspace, [("w1", "pA", shared), ("w2", "pB", shared)])
    winners = [name for name, (status, _) in outcomes.items() if status == "ok"]
    assert len(winners) == 1, outcomes
    loser = "w2" if winners == ["w1"] else "w1"
    assert outcomes[loser][0] == "RowValidationError" and "already belongs to partition" in outcomes[loser][1]
    table = lake.table(EVENTS)
    assert table.partition_counts() == {{"w1": "pA", "w2": "pB"}[winners[0]]: 1}


def test_a_held_lock_times_out_naming_the_table_and_other_tables_stay_writable(lake, conninfo, workspace, monkeypatch):
    table, other = lake.table(DOCS), lake.table(EVENTS)
    table.replace_partition("p", [doc("a")], "before")
    monkeypatch.setenv("DLK_LOCK_TIMEOUT_S", "0.2")
    holder = _hold_lock(conninfo, workspace, DOCS)
    try:
        with pytest.raises(TableLockTimeout, match="table 'docs' is being written by another process for more than 0.2 s"):
            table.replace_partition("p", [doc("b")], "blocked")
        assert other.append("p", event_rows("e", 1), "not blocked").rows_written == 1  # the lock is per table
    finally:
        holder.close()
    assert keys(table.read_partition("p")) == ["a"]
    assert table.replace_partition("p", [doc("b")], "after").rows_written == 1


# --- row-level writes and array-membership filters (the vector-record layer's needs) -------------------

def test_upsert_replaces_held_keys_adds_the_rest_and_delete_rows_removes_only_the_partitions(lake):
    table = lake.table(DOCS)
    table.replace_partition("p1", [doc("a"), doc("b")], "two rows")
    table.replace_partition("p2", [doc("c")], "another partition")
    before = table.version
    write = table.upsert("p1", [doc("a", task="rewritten"), doc("d")], "upsert")
    assert (write.rows_written, write.rows_replaced) == (2, 1) and table.version != before
    assert {r["row_key"]: r["task"] for r in table.read_partition("p1")} == {"a": "rewritten", "b": "task b", "d": "task d"}
    with pytest.raises(RowValidationError, match="already belongs to partition 'p2'"):
        table.upsert("p1", [doc("c"), doc("e")], "clash")
    assert sorted(keys(table.read_partition("p1"))) == ["a", "b", "d"]  # the failed upsert wrote nothing
    assert table.delete_rows("p1", ["a", "c", "zz"], "delete") == 1  # c is p2's: untouched
    assert sorted(keys(table.read_partition("p1"))) == ["b", "d"] and keys(table.read_partition("p2")) == ["c"]
    version = table.version
    assert table.delete_rows("p1", ["nothing"], "no-op") == 0 and table.version == version


def test_has_filter_tests_json_array_membership_never_substrings(lake):
    table = lake.table(DOCS)
    table.replace_partition("p", [doc("a", meta={"tags": ["ml", "nlp"], "s": "mlops"}),
                                  doc("b", meta={"tags": ["x"], "s": "ml"}), doc("c", meta={"n": 3})], "rows")
    has = lambda key, value: sorted(keys(table.read_where(Comparison("meta", "HAS", value, key))))
    assert has("tags", "ml") == ["a"] and has("tags", "m") == [] and has("s", "ml") == [] and has("n", 3) == []
