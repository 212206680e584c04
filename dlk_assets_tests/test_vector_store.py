"""The vector-record layer on a real local Deep Lake: the seed's validation rules and error codes, batch
semantics, metadata filters with their exact meaning, and search that stays inside the caller's tenant."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest

from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.retrieval.filters import Comparison
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets.vectors.errors import VectorServiceError
from dlk_assets.vectors.metadata_filters import compile_metadata_filter
from dlk_assets.vectors.records import (
    DatasetCreate,
    DatasetInfo,
    SearchOptions,
    SearchRequest,
    VectorBatchInsert,
)
from dlk_assets.vectors.schema import record_schema
from dlk_assets.vectors.store import VectorStore
from dlk_assets.vectors.validation import now_iso, parse_record, record_row

DIM = 8


def vector_id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def record(n: int, tenant: str = "t1", **fields) -> dict:
    values = np.random.default_rng(n).normal(size=DIM).tolist()
    base = {"id": vector_id(n), "document_id": f"doc-{n // 4}", "values": values,
            "content": f"chunk {n} about {'cats' if n % 2 else 'dogs'}", "chunk_index": n % 4, "chunk_count": 4,
            "metadata": {"tenant_id": tenant, "tags": ["odd", "x"] if n % 2 else ["even"], "page": n,
                         "classification": "public" if n % 3 else "internal"}}
    return {**base, **fields}


@pytest.fixture
def store(tmp_path) -> VectorStore:
    vectors = VectorStore(LocalDeepLake(tmp_path / "lake"))
    for tenant in ("t1", "t2"):  # each tenant's own dataset of that name
        vectors.create_dataset(DatasetCreate(name="notes", dimensions=DIM, model="text-embedding-3-small"), tenant)
    return vectors


def insert(store: VectorStore, tenant: str, records: list, **flags):
    return store.insert_batch("notes", tenant, VectorBatchInsert(vectors=records, **flags))


def error_of(store: VectorStore, raw: dict, tenant: str = "t1") -> str:
    result = insert(store, tenant, [raw])
    assert result.inserted_count == 0 and result.failed_count == 1
    return result.errors[0].error_code


@pytest.mark.parametrize(("change", "code"), [
    ({"values": [0.1] * (DIM - 1)}, "INVALID_VECTOR_DIMENSIONS"),
    ({"values": [float("nan")] + [0.0] * (DIM - 1)}, "INVALID_VECTOR_VALUES"),
    ({"values": [float("inf")] + [0.0] * (DIM - 1)}, "INVALID_VECTOR_VALUES"),
    ({"values": [1e39] + [0.0] * (DIM - 1)}, "INVALID_VECTOR_VALUES"),
    ({"values": ["a"] * DIM}, "VALIDATION_ERROR"),
    ({"values": ["0.5"] * DIM}, "VALIDATION_ERROR"),  # no coercion: a number in a string is not a number
    ({"values": [True] + [0.0] * (DIM - 1)}, "VALIDATION_ERROR"),
    ({"chunk_index": "2"}, "VALIDATION_ERROR"),
    ({"chunk_count": 4.0}, "VALIDATION_ERROR"),
    ({"content_hash": "g" * 64}, "VALIDATION_ERROR"),
    ({"content": "x" * 10_001}, "VALIDATION_ERROR"),
    ({"content": "bad \ud800 surrogate"}, "VALIDATION_ERROR"),
    ({"content_hash": "abc"}, "VALIDATION_ERROR"),
    ({"content_hash": "0" * 64}, "CONTENT_HASH_MISMATCH"),
    ({"content_type": "not a mime"}, "VALIDATION_ERROR"),
    ({"content_type": "nonsense/plain"}, "VALIDATION_ERROR"),
    ({"language": "english"}, "VALIDATION_ERROR"),
    ({"language": "xx"}, "VALIDATION_ERROR"),
    ({"chunk_index": 4, "chunk_count": 4}, "VALIDATION_ERROR"),
    ({"chunk_index": -1}, "VALIDATION_ERROR"),
    ({"chunk_count": 0, "chunk_index": None}, "VALIDATION_ERROR"),
    ({"metadata": {"author": "no tenant"}}, "VALIDATION_ERROR"),
    ({"metadata": {"tenant_id": "t1", "blob": "x" * 11_000}}, "VALIDATION_ERROR"),
    ({"metadata": {"tenant_id": "t2"}}, "TENANT_MISMATCH"),
    ({"model": "my-own-model"}, "UNKNOWN_MODEL"),
    ({"model": "text-embedding-ada-002"}, "MODEL_MISMATCH"),
    ({"id": "not-a-uuid"}, "VALIDATION_ERROR"),
    ({"id": str(uuid.uuid1())}, "VALIDATION_ERROR"),  # a UUID, but not version 4
    ({"document_id": ""}, "VALIDATION_ERROR"),
    ({"surprise": 1}, "VALIDATION_ERROR"),
])
def test_each_validation_rule_has_its_error_code_and_stores_nothing(store, change, code):
    assert error_of(store, {**record(1), **change}) == code
    assert len(store.dataset("notes", "t1")[1]) == 0


def test_valid_records_get_defaults_the_hash_and_timestamps(store):
    assert insert(store, "t1", [record(1, content_type="text/markdown; charset=utf-8", language="fr")]).inserted_count == 1
    stored = store.get("notes", "t1", vector_id(1))
    assert stored.content_hash == hashlib.sha256(b"chunk 1 about cats").hexdigest()
    shouted = record(2, content_hash=hashlib.sha256(b"chunk 2 about dogs").hexdigest().upper())  # hex is case-blind
    assert insert(store, "t1", [shouted]).inserted_count == 1
    assert store.get("notes", "t1", vector_id(2)).content_hash == hashlib.sha256(b"chunk 2 about dogs").hexdigest()
    assert (stored.content_type, stored.language, stored.model, stored.tenant_id) == (
        "text/markdown; charset=utf-8", "fr", "text-embedding-3-small", "t1")
    assert stored.dimensions == DIM and stored.created_at == stored.updated_at
    bare = {"document_id": "d", "values": [0.5] * DIM, "metadata": {"tenant_id": "t1"}}
    result = insert(store, "t1", [bare])
    generated = result.model_dump()
    assert generated["inserted_count"] == 1 and generated["processing_time_ms"] > 0
    [row] = store.search("notes", "t1", SearchRequest(query_vector=[0.5] * DIM, options=SearchOptions(
        top_k=1, filters={"document_id": "d"}))).results
    assert uuid.UUID(row.id).version == 4
    assert (row.content_type, row.language, row.chunk_index, row.chunk_count, row.chunk_id) == ("text/plain", "en", None, None, None)


def test_one_bad_record_never_blocks_the_good_ones(store):
    batch = [record(1), {**record(2), "values": [1.0]}, "not an object", record(3), {**record(3)}]
    result = insert(store, "t1", batch)
    assert (result.inserted_count, result.failed_count) == (2, 3)
    assert [(e.index, e.error_code) for e in result.errors] == [
        (1, "INVALID_VECTOR_DIMENSIONS"), (2, "VALIDATION_ERROR"), (4, "DUPLICATE_VECTOR")]
    assert result.error_messages[0].startswith("vectors[1]: INVALID_VECTOR_DIMENSIONS: Vector dimensions (1) do not match")


def test_existing_ids_fail_skip_or_overwrite_as_asked(store):
    insert(store, "t1", [record(1), record(2)])
    first = store.get("notes", "t1", vector_id(1))
    duplicate = insert(store, "t1", [record(1), record(5)])
    assert (duplicate.inserted_count, duplicate.errors[0].error_code) == (1, "DUPLICATE_VECTOR")
    assert duplicate.errors[0].details["action"].startswith("Use overwrite=true")
    skipped = insert(store, "t1", [record(2), record(6)], skip_existing=True)
    assert (skipped.inserted_count, skipped.skipped_count, skipped.failed_count) == (1, 1, 0)
    overwritten = insert(store, "t1", [{**record(1), "content": "rewritten"}], overwrite=True)
    assert overwritten.inserted_count == 1
    again = store.get("notes", "t1", vector_id(1))
    assert again.content == "rewritten" and again.created_at == first.created_at and again.updated_at >= first.updated_at
    assert len(store.dataset("notes", "t1")[1]) == 4
    with pytest.raises(VectorServiceError) as both:
        insert(store, "t1", [record(9)], skip_existing=True, overwrite=True)
    assert both.value.error_code == "VALIDATION_ERROR"


def test_small_internal_batches_store_the_same_records(store):
    assert insert(store, "t1", [record(n) for n in range(10)], batch_size=3).inserted_count == 10
    assert len(store.dataset("notes", "t1")[1]) == 10


def test_ids_are_per_tenant_and_reads_never_cross(store):
    insert(store, "t1", [record(n) for n in range(6)])
    insert(store, "t2", [record(n, "t2", content="other tenant") for n in range(3)])  # the same ids, another tenant
    assert store.get("notes", "t1", vector_id(1)).content == "chunk 1 about cats"
    assert store.get("notes", "t2", vector_id(1)).content == "other tenant"
    with pytest.raises(VectorServiceError) as missing:
        store.get("notes", "t2", vector_id(5))
    assert missing.value.error_code == "VECTOR_NOT_FOUND" and missing.value.status == 404
    with pytest.raises(VectorServiceError):
        store.delete("notes", "t2", vector_id(5))
    store.delete("notes", "t2", vector_id(1))
    assert store.get("notes", "t1", vector_id(1)).content == "chunk 1 about cats"


def _search(store, tenant="t1", **options):
    query = options.pop("query_vector", np.ones(DIM).tolist())
    text = options.pop("query_text", None)
    return store.search("notes", tenant, SearchRequest(query_vector=query, query_text=text,
                                                       options=SearchOptions(top_k=options.pop("top_k", 50), **options)))


def test_filters_mean_exactly_what_they_say(store):
    insert(store, "t1", [record(n) for n in range(12)])
    pages = lambda response: sorted(hit.metadata["page"] for hit in response.results)
    assert pages(_search(store, filters={"tags": {"$in": ["odd"]}})) == [1, 3, 5, 7, 9, 11]
    assert pages(_search(store, filters={"tags": {"$in": ["od"]}})) == []  # membership, never a substring
    assert pages(_search(store, filters={"classification": {"$in": ["internal"]}})) == [0, 3, 6, 9]  # a scalar in the list
    assert pages(_search(store, filters={"classification": {"$in": ["intern"]}})) == []
    assert pages(_search(store, filters={"$and": [{"tenant_id": "t1"}, {"$or": [{"classification": "internal"},
                                                                                  {"page": {"$gte": 10}}]}]})) == [0, 3, 6, 9, 10, 11]
    assert pages(_search(store, filters={"document_id": "doc-1", "chunk_index": {"$lt": 2}})) == [4, 5]
    assert pages(_search(store, filters={"page": {"$ne": 0}, "metadata.classification": "internal"})) == [3, 6, 9]
    assert pages(_search(store, filters={})) == list(range(12))


def test_a_comparison_never_matches_a_record_without_the_field(store):
    bare = [{"id": vector_id(50 + n), "document_id": "bare", "values": record(50 + n)["values"],
             "metadata": {"tenant_id": "t1", "page": 50 + n}} for n in range(2)]  # no chunk_index, chunk_id, ...
    with_chunk = [record(n, chunk_id=f"c{n}") for n in range(4)]  # chunk_index 0-3
    insert(store, "t1", [*bare, *with_chunk])
    pages = lambda response: sorted(hit.metadata["page"] for hit in response.results)
    assert pages(_search(store, filters={"chunk_index": {"$lt": 2}})) == [0, 1]
    assert pages(_search(store, filters={"chunk_index": {"$ne": 2}})) == [0, 1, 3]
    assert pages(_search(store, filters={"chunk_index": {"$gt": -5}})) == [0, 1, 2, 3]
    assert pages(_search(store, filters={"chunk_id": {"$ne": "c1"}})) == [0, 2, 3]
    assert pages(_search(store, filters={"chunk_id": {"$in": ["c1", "c2"]}})) == [1, 2]
    assert pages(_search(store, filters={"page": {"$gte": 50}})) == [50, 51]  # metadata keys: as stored
    with pytest.raises(VectorServiceError) as empty:
        compile_metadata_filter({"chunk_id": ""})
    assert empty.value.details["path"] == "filters.chunk_id"


@pytest.mark.parametrize(("filters", "path"), [
    ({"tags": {"$regex": "a"}}, "filters.tags.$regex"),
    ({"$and": [{"page": 1}, {"$or": [{"a": [1]}]}]}, "filters.$and[1].$or[0].a"),
    ({"$or": []}, "filters.$or"),
    ({"$or": [{}]}, "filters.$or"),
    ({"$nor": [{"a": 1}]}, "filters.$nor"),
    ({"chunk_index": "one"}, "filters.chunk_index"),
    ({"page": float("nan")}, "filters.page"),
    ({"bad key!": 1}, "filters.bad key!"),
    ({"tags": {"$in": list(range(40))}}, "filters.tags.$in"),
])
def test_an_invalid_filter_names_the_bad_part(filters, path):
    with pytest.raises(VectorServiceError) as refused:
        compile_metadata_filter(filters)
    assert refused.value.error_code == "INVALID_FILTER" and refused.value.details["path"] == path


def test_search_scores_are_exact_cosine_and_hybrid_and_bm25_stay_in_the_tenant(store):
    insert(store, "t1", [record(n) for n in range(10)])
    insert(store, "t2", [record(n + 100, "t2", content="cats cats cats") for n in range(10)])
    query = np.random.default_rng(7).normal(size=DIM)
    vectors = {hit.id: np.asarray(store.get("notes", "t1", hit.id).values) for hit in _search(store).results}
    expected = sorted(vectors, key=lambda key: -float(vectors[key] @ query / np.linalg.norm(vectors[key]) / np.linalg.norm(query)))
    got = _search(store, query_vector=query.tolist(), top_k=5)
    assert [hit.id for hit in got.results] == expected[:5]
    for mode in ("bm25", "hybrid"):
        hits = _search(store, query_text="cats", mode=mode, top_k=20).results
        assert hits and all(hit.metadata["tenant_id"] == "t1" for hit in hits)
    with pytest.raises(VectorServiceError) as no_text:
        _search(store, mode="bm25")
    assert no_text.value.error_code == "VALIDATION_ERROR"
    with pytest.raises(VectorServiceError) as no_model:
        store.search("notes", "t1", SearchRequest(query_text="cats"))
    assert no_model.value.error_code == "QUERY_TEXT_NOT_SUPPORTED"


def test_hybrid_scores_the_union_by_true_cosine_plus_identifiers_found(store):
    """Hybrid re-scores both legs' union: cosine to the query vector (vectors need not be unit length) plus
    0.5 x the share of the query's terms that are identifiers in the row's content, as in agent memory's
    hybrid: the row holding the asked identifier moves up by exactly 0.5."""
    rows = [record(n) for n in range(10)]
    rows[3] = record(3, content="the proxy ignored X-Forwarded-Host entirely")
    insert(store, "t1", rows)
    stored = {vector_id(n): np.asarray(store.get("notes", "t1", vector_id(n)).values) for n in range(10)}
    query = np.random.default_rng(11).normal(size=DIM) * 3.0
    cosine = {key: float(v @ query / np.linalg.norm(v) / np.linalg.norm(query)) for key, v in stored.items()}
    expected = {key: value + (0.5 if key == vector_id(3) else 0.0) for key, value in cosine.items()}
    hits = _search(store, query_vector=query.tolist(), query_text="X-Forwarded-Host", mode="hybrid", top_k=10).results
    assert [hit.id for hit in hits] == sorted(expected, key=lambda key: -expected[key])
    assert all(hit.score == pytest.approx(expected[hit.id], abs=1e-5) for hit in hits)
    by_vector = [hit.id for hit in _search(store, query_vector=query.tolist(), top_k=10).results]
    assert [hit.id for hit in hits].index(vector_id(3)) < by_vector.index(vector_id(3))


def test_hybrid_with_values_and_a_dataset_deleted_through_another_store(store, tmp_path):
    insert(store, "t1", [record(n) for n in range(4)])
    hits = _search(store, query_vector=record(1)["values"], query_text="cats", mode="hybrid", include_values=True).results
    assert hits and all(hit.values is not None and len(hit.values) == DIM for hit in hits)
    other = VectorStore(LocalDeepLake(tmp_path / "lake"))  # another process on the same lake
    other.insert_batch("notes", "t1", VectorBatchInsert(vectors=[record(9)]))
    assert store.delete_dataset("notes", "t1") == 5  # counted after a refresh: the other writer's record too
    with pytest.raises(VectorServiceError) as gone:
        other.search("notes", "t1", SearchRequest(query_vector=record(1)["values"]))
    assert gone.value.error_code == "DATASET_NOT_FOUND"  # its cached handle is let go, not used


@pytest.mark.parametrize("filters", [
    None, {"tenant_id": "t2"}, {"metadata.tenant_id": "t2"}, {"$or": [{"tenant_id": "t2"}, {"tenant_id": "t1"}]},
    {"tenant_id": {"$in": ["t2", "t1"]}}, {"tenant_id": {"$ne": "t1"}}, {"$or": [{"classification": "public"}, {"page": 2}]},
])
def test_a_dataset_shared_by_tenants_answers_each_only_with_its_own_rows(tmp_path, filters):
    """A read-only dataset many tenants' records share (how `dlk serve` attaches the documents table):
    only the row-level tenant filter, ANDed outside the client's filter, keeps one tenant's search in its
    rows, whatever the filter asks for, in every mode."""
    lake = LocalDeepLake(tmp_path / "lake")
    info = DatasetInfo(name="shared", dimensions=DIM, model="text-embedding-3-small", created_at="", read_only=True,
                       table="shared_records")
    table = lake.table(record_schema(info.table, DIM))
    for tenant in ("t1", "t2"):
        rows = [{"row_key": f"{tenant}-{n}", **record_row(parse_record(record(n, tenant, id=str(uuid.uuid4()))), info, tenant,
                                                          now_iso())} for n in range(6)]
        table.append(tenant, rows, f"records of {tenant}")
    table.create_index("content", "bm25")
    store = VectorStore(lake, attached={"shared": lambda: (info, table)})
    allows_t1 = filters is None or "t1" in str(filters) and "$ne" not in str(filters) or "classification" in str(filters)
    for mode in ("vector", "bm25", "hybrid"):
        # The query is another tenant's vector: an engine filter that let t2's rows in would fill the
        # top 3 with them, and the hit re-check would leave fewer than 3.
        hits = store.search("shared", "t1", SearchRequest(query_vector=record(1, "t2")["values"], query_text="cats dogs",
                                                          options=SearchOptions(top_k=3, mode=mode, filters=filters))).results
        assert {hit.metadata["tenant_id"] for hit in hits} <= {"t1"}, (mode, filters)
        assert len(hits) == (3 if allows_t1 else 0), (mode, filters)


def test_filtered_search_after_deletes_returns_only_matching_rows(tmp_path):
    """Deep Lake 4.7.4 answers WHERE ... ORDER BY similarity wrongly once an indexed table has lost rows;
    `Table.search` with a filter must still give exactly the filtered top-k."""
    table = LocalDeepLake(tmp_path / "lake").table(TableSchema("probe", (
        Column("kind", Kind.TEXT), Column("embedding", Kind.VECTOR, DIM))))
    vectors = np.random.default_rng(0).normal(size=(40, DIM)).astype(np.float32)
    rows = [{"row_key": f"r{i:02d}", "kind": "x" if i % 2 else "y", "embedding": vectors[i]} for i in range(40)]
    table.replace_partition("a", rows[:20], "first")
    table.replace_partition("b", rows[20:], "second")
    table.replace_partition("a", rows[:3] + rows[4:20], "drop r03")  # a delete inside the indexed table
    query = np.full(DIM, 0.1, dtype=np.float32)
    hits = table.search(VectorSearch("embedding", query, "vector", 8, Comparison("kind", "==", "x"), ("kind",)))
    odd = [i for i in range(40) if i % 2 and i != 3]
    cosine = {i: float(vectors[i] @ query / np.linalg.norm(vectors[i]) / np.linalg.norm(query)) for i in odd}
    assert [hit.row_key for hit in hits] == [f"r{i:02d}" for i in sorted(odd, key=lambda i: -cosine[i])[:8]]
    assert all(hit.values["kind"] == "x" for hit in hits)
    assert hits[0].score == pytest.approx(max(cosine.values()), abs=1e-5)


def test_dataset_names_models_and_read_only_datasets(store, tmp_path):
    with pytest.raises(VectorServiceError) as taken:
        store.create_dataset(DatasetCreate(name="notes", dimensions=DIM, model="text-embedding-3-small"), "t1")
    assert taken.value.error_code == "DATASET_ALREADY_EXISTS" and taken.value.status == 409
    for name, model, dims, code in (("Bad Name", "text-embedding-3-small", 8, "VALIDATION_ERROR"),
                                    ("x" * 41, "text-embedding-3-small", 8, "VALIDATION_ERROR"),
                                    ("ok", "unknown-model", 8, "UNKNOWN_MODEL"),
                                    ("ok", "all-MiniLM-L6-v2", 512, "VALIDATION_ERROR"),
                                    ("ok", "text-embedding-ada-002", 8, "VALIDATION_ERROR"),
                                    ("ok", "text-embedding-3-small", 2048, "VALIDATION_ERROR")):
        with pytest.raises(VectorServiceError) as refused:
            store.create_dataset(DatasetCreate(name=name, dimensions=dims, model=model), "t1")
        assert refused.value.error_code == code
    with pytest.raises(VectorServiceError) as missing:
        store.dataset("nope", "t1")
    assert missing.value.error_code == "DATASET_NOT_FOUND"
    reopened = VectorStore(LocalDeepLake(tmp_path / "lake"))
    assert [info.name for info in reopened.datasets("t1")] == ["notes"]
    assert reopened.datasets("t3") == []  # another tenant sees no names
    with pytest.raises(VectorServiceError) as elsewhere:
        reopened.dataset("notes", "t3")
    assert elsewhere.value.error_code == "DATASET_NOT_FOUND"


def test_each_tenant_has_its_own_datasets_and_deletes_only_its_own(store):
    insert(store, "t1", [record(n) for n in range(4)])
    insert(store, "t2", [record(n, "t2") for n in range(2)])
    assert store.dataset("notes", "t1")[0].table != store.dataset("notes", "t2")[0].table
    assert (len(store.dataset("notes", "t1")[1]), len(store.dataset("notes", "t2")[1])) == (4, 2)
    assert store.delete_dataset("notes", "t2") == 2
    with pytest.raises(VectorServiceError) as gone:
        store.dataset("notes", "t2")
    assert gone.value.error_code == "DATASET_NOT_FOUND"
    assert sorted(store.get("notes", "t1", vector_id(n)).id for n in range(4)) == sorted(vector_id(n) for n in range(4))
    # The name is free again for t2 and starts empty; t1's records are untouched.
    store.create_dataset(DatasetCreate(name="notes", dimensions=DIM, model="text-embedding-3-small"), "t2")
    assert len(store.dataset("notes", "t2")[1]) == 0 and len(store.dataset("notes", "t1")[1]) == 4
