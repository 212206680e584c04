"""`dlk serve` over real HTTP on 127.0.0.1: the seed's vector endpoints and error shape, tenant isolation
for every query shape, request limits, the OpenAPI document, files by id and search over the sources."""

from __future__ import annotations

import json
import math
import uuid

import numpy as np
import pytest
import requests

from dlk_assets.service.fast_json import parse_json
from dlk_assets_tests.conftest import make_home
from dlk_assets_tests.service_fixtures import (
    API_KEYS,
    start_service,
    stop_service,
    write_keys,
)

DIM = 384  # all-MiniLM-L6-v2, so query_text works
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A service on an empty instance; each of two tenants has its own dataset `notes` of 8 records."""
    root = tmp_path_factory.mktemp("vector-service")
    home = make_home(root / "dagster_home")
    process, base = start_service(home, write_keys(root), "--no-warm-up")
    try:
        api = Api(base)
        for tenant in ("acme", "globex"):
            assert api.post("/datasets", tenant, {"name": "notes", "dimensions": DIM, "model": MODEL}).status_code == 201
            answer = api.post("/datasets/notes/vectors/batch", tenant, {"vectors": [record(n, tenant) for n in range(8)]})
            assert answer.json()["inserted_count"] == 8, answer.text
        yield api
    finally:
        stop_service(process)


class Api:
    def __init__(self, base: str):
        self.base = base + "/api/v1"

    def headers(self, tenant: str | None) -> dict:
        return {"Authorization": f"Bearer {API_KEYS[tenant]}"} if tenant else {}

    def post(self, path: str, tenant: str | None, body, **kwargs) -> requests.Response:
        return requests.post(self.base + path, json=body, headers=self.headers(tenant), timeout=60, **kwargs)

    def get(self, path: str, tenant: str | None) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers(tenant), timeout=60)

    def delete(self, path: str, tenant: str | None) -> requests.Response:
        return requests.delete(self.base + path, headers=self.headers(tenant), timeout=60)

    def search(self, tenant: str, **body) -> list[dict]:
        answer = self.post("/datasets/notes/search", tenant, body)
        assert answer.status_code == 200, answer.text
        return answer.json()["results"]


def vector_id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def embed(text: str) -> list[float]:
    """What a client sends: the text's MiniLM vector (the dataset's model), computed on this side."""
    from dlk_assets.models.catalog import build_encoder

    return build_encoder("minilm", "cpu").encode_pooled([text])[0].tolist()


def unit(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=DIM)
    return (vector / np.linalg.norm(vector)).tolist()


def content(n: int, tenant: str) -> str:
    return f"{tenant} note {n}: {'cats purring on the sofa' if n % 2 else 'database index tuning'}"


def record(n: int, tenant: str, **fields) -> dict:
    return {"id": vector_id(n), "document_id": f"{tenant}-doc-{n // 4}", "values": embed(content(n, tenant)),
            "content": content(n, tenant), "chunk_index": n % 4, "chunk_count": 4,
            "metadata": {"tenant_id": tenant, "tags": ["odd"] if n % 2 else ["even"], "classification": "public"},
            **fields}


def assert_error(answer: requests.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False and body["error_code"] == code and isinstance(body["message"], str)
    assert isinstance(body["details"], dict)
    return body


def tenants(results: list[dict]) -> set[str]:
    return {hit["metadata"]["tenant_id"] for hit in results}


# --- the seed's endpoints ----------------------------------------------------------------------------

def test_a_dataset_says_how_its_searches_are_answered(service):
    described = service.get("/datasets/notes", "acme").json()
    assert (described["name"], described["dimensions"], described["model"]) == ("notes", DIM, MODEL)
    assert described["search_path"].startswith("exact scan over ") and "recall 1.0" in described["search_path"]
    answer = service.post("/datasets/notes/search", "acme", {"query_vector": unit(0), "options": {"top_k": 3}}).json()
    assert answer["search_path"] == described["search_path"]  # each answer states the recall it delivers


def test_batch_insert_get_search_delete_follow_the_seed(service):
    answer = service.post("/datasets/notes/vectors/batch", "acme", {
        "vectors": [record(100, "acme"), {**record(101, "acme"), "values": [0.1] * 512}], "batch_size": 1})
    body = answer.json()
    assert answer.status_code == 200 and set(body) >= {"inserted_count", "skipped_count", "failed_count",
                                                         "error_messages", "processing_time_ms"}
    assert (body["inserted_count"], body["failed_count"]) == (1, 1)
    assert body["errors"][0]["details"] == {"provided_dimensions": 512, "expected_dimensions": DIM, "dataset_id": "notes"}
    got = service.get(f"/datasets/notes/vectors/{vector_id(100)}", "acme").json()
    assert got["dataset_id"] == "notes" and got["dimensions"] == DIM and got["tenant_id"] == "acme"
    assert np.allclose(got["values"], record(100, "acme")["values"], atol=1e-6)
    assert got["created_at"].endswith("Z") and got["metadata"]["tags"] == ["even"]
    hits = service.search("acme", query_vector=record(100, "acme")["values"],
                          options={"top_k": 3, "filters": {"tenant_id": "acme"}, "include_content": True, "include_metadata": True})
    assert hits[0]["id"] == vector_id(100) and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    bare = service.search("acme", query_vector=record(100, "acme")["values"], options={"top_k": 1, "include_content": False,
                                                                                       "include_metadata": False})
    assert bare[0]["content"] is None and bare[0]["metadata"] is None
    assert service.delete(f"/datasets/notes/vectors/{vector_id(100)}", "acme").json()["deleted"] is True
    assert_error(service.get(f"/datasets/notes/vectors/{vector_id(100)}", "acme"), 404, "VECTOR_NOT_FOUND")
    assert_error(service.delete(f"/datasets/notes/vectors/{vector_id(100)}", "acme"), 404, "VECTOR_NOT_FOUND")


def test_query_text_is_embedded_by_the_datasets_model_in_every_mode(service):
    for mode in ("vector", "bm25", "hybrid"):
        hits = service.search("acme", query_text="a cat purring", options={"top_k": 3, "mode": mode})
        assert hits and all("cats" in hit["content"] for hit in hits), (mode, hits)
    answer = service.post("/datasets", "acme", {"name": "ada", "dimensions": 1536, "model": "text-embedding-ada-002"})
    assert answer.status_code == 201
    assert_error(service.post("/datasets/ada/search", "acme", {"query_text": "cats"}), 422, "QUERY_TEXT_NOT_SUPPORTED")


def test_duplicates_skip_and_overwrite_over_http(service):
    again = assert_error(service.post("/datasets/notes/vectors/batch", "acme", {"vectors": [record(1, "acme")]}), 409,
                         "DUPLICATE_VECTOR")  # nothing stored: the batch answers with its failure's code
    assert again["details"]["batch"]["failed_count"] == 1 and again["details"]["vector_id"] == vector_id(1)
    skipped = service.post("/datasets/notes/vectors/batch", "acme", {"vectors": [record(1, "acme")], "skip_existing": True}).json()
    assert (skipped["inserted_count"], skipped["skipped_count"]) == (0, 1)
    rewritten = {**record(1, "acme"), "content": "acme note 1: rewritten"}
    assert service.post("/datasets/notes/vectors/batch", "acme", {"vectors": [rewritten], "overwrite": True}).json()["inserted_count"] == 1
    assert service.get(f"/datasets/notes/vectors/{vector_id(1)}", "acme").json()["content"] == "acme note 1: rewritten"


# --- errors and limits -------------------------------------------------------------------------------

def test_bad_requests_get_4xx_in_the_seeds_shape_and_change_nothing(service):
    count = len(service.search("acme", query_vector=unit(0), options={"top_k": 100}))
    assert_error(service.post("/datasets/notes/search", "acme", {"query_vector": [0.1, 0.2]}), 422, "INVALID_VECTOR_DIMENSIONS")
    nan_body = '{"query_vector": [NaN' + ", 0.0" * (DIM - 1) + "]}"
    assert_error(requests.post(service.base + "/datasets/notes/search", data=nan_body, timeout=30, headers={
        **service.headers("acme"), "Content-Type": "application/json"}), 422, "INVALID_VECTOR_VALUES")
    assert_error(service.post("/datasets/notes/search", "acme", {"query_vector": "cats"}), 422, "VALIDATION_ERROR")
    assert_error(service.post("/datasets/notes/search", "acme", {"query_vector": unit(0), "options": {"top_k": 0}}), 422,
                 "VALIDATION_ERROR")
    assert_error(service.post("/datasets/notes/search", "acme", {"query_vector": unit(0), "options": {"filters": {"a": {"$x": 1}}}}),
                 400, "INVALID_FILTER")
    assert_error(service.post("/datasets/notes/vectors/batch", "acme", {"vectors": []}), 422, "VALIDATION_ERROR")
    assert_error(service.post("/datasets/notes/vectors/batch", "acme", {"vectors": [record(1, "acme")] * 1001}), 422,
                 "VALIDATION_ERROR")
    assert_error(requests.post(service.base + "/datasets/notes/search", data="{not json", timeout=30, headers={
        **service.headers("acme"), "Content-Type": "application/json"}), 422, "VALIDATION_ERROR")
    assert_error(service.post("/datasets/nope/search", "acme", {"query_vector": unit(0)}), 404, "DATASET_NOT_FOUND")
    assert_error(service.post("/datasets", "acme", {"name": "notes", "dimensions": DIM, "model": MODEL}), 409,
                 "DATASET_ALREADY_EXISTS")
    assert_error(service.get("/no/such/route", "acme"), 404, "NOT_FOUND")
    huge = b'{"vectors": [' + b"0," * (17 * 1024 * 1024) + b"0]}"
    assert_error(requests.post(service.base + "/datasets/notes/vectors/batch", data=huge, timeout=60, headers={
        **service.headers("acme"), "Content-Type": "application/json"}), 413, "REQUEST_TOO_LARGE")
    assert len(service.search("acme", query_vector=unit(0), options={"top_k": 100})) == count


def test_missing_or_unknown_keys_are_401(service):
    assert_error(service.get("/datasets", None), 401, "UNAUTHORIZED")
    answer = requests.get(service.base + "/datasets", headers={"Authorization": "Bearer not-a-key-0000000000"}, timeout=30)
    assert_error(answer, 401, "UNAUTHORIZED")
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert_error(requests.get(service.base + "/datasets", headers={"Authorization": API_KEYS["acme"]}, timeout=30), 401,
                 "UNAUTHORIZED")


def test_openapi_document_lists_the_seed_endpoints(service):
    document = requests.get(service.base + "/openapi.json", timeout=30).json()
    paths = document["paths"]
    assert {"/api/v1/datasets", "/api/v1/datasets/{dataset_id}/vectors/batch", "/api/v1/datasets/{dataset_id}/search",
            "/api/v1/datasets/{dataset_id}/vectors/{vector_id}", "/api/v1/files/{file_id}"} <= set(paths)
    assert {"get", "delete"} <= set(paths["/api/v1/datasets/{dataset_id}/vectors/{vector_id}"])
    assert "VectorBatchResponse" in document["components"]["schemas"]
    for path, method, schema in (("/api/v1/datasets/{dataset_id}/search", "post", "SearchResponse"),
                                 ("/api/v1/datasets/{dataset_id}/vectors/{vector_id}", "get", "VectorResponse")):
        answer = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"#/components/schemas/{schema}"}  # documented though the route returns it pre-serialized


# --- tenants: enforced, whatever the request says ------------------------------------------------------

@pytest.mark.parametrize("options", [
    {},
    {"filters": {}},
    {"filters": {"tenant_id": "globex"}},
    {"filters": {"metadata.tenant_id": "globex"}},
    {"filters": {"$or": [{"tenant_id": "globex"}, {"tenant_id": "acme"}]}},
    {"filters": {"$or": [{"classification": "public"}, {"tags": {"$in": ["odd", "even"]}}]}},
    {"filters": {"tenant_id": {"$in": ["globex", "acme"]}}},
    {"filters": {"tenant_id": {"$ne": "acme"}}},
    {"filters": {"document_id": "globex-doc-0"}},
    {"mode": "hybrid"},
    {"mode": "bm25"},
    {"mode": "hybrid", "filters": {"$or": [{"tenant_id": "globex"}, {"classification": "public"}]}},
])
def test_search_never_returns_another_tenants_rows(service, options):
    body = {"query_text": "cats purring", "options": {"top_k": 100, **options}}
    if options.get("mode") is None:
        body["query_vector"] = embed(content(1, "globex"))  # the closest rows belong to the other tenant
    hits = service.search("acme", **body)
    assert tenants(hits) <= {"acme"}


def test_each_tenant_finds_its_own_records(service):
    for tenant in ("acme", "globex"):
        hits = service.search(tenant, query_text="cats purring", options={"top_k": 8, "mode": "hybrid"})
        assert len(hits) == 8 and tenants(hits) == {tenant}


def test_datasets_are_per_tenant_and_invisible_to_others(service):
    assert service.post("/datasets", "acme", {"name": "acme-only", "dimensions": DIM, "model": MODEL}).status_code == 201
    assert service.post("/datasets/acme-only/vectors/batch", "acme", {"vectors": [record(0, "acme")]}).json()["inserted_count"] == 1
    assert "acme-only" in {d["name"] for d in service.get("/datasets", "acme").json()}
    assert "acme-only" not in {d["name"] for d in service.get("/datasets", "globex").json()}
    for answer in (service.get("/datasets/acme-only", "globex"), service.delete("/datasets/acme-only", "globex"),
                   service.post("/datasets/acme-only/vectors/batch", "globex", {"vectors": [record(1, "globex")]}),
                   service.post("/datasets/acme-only/search", "globex", {"query_vector": unit(0)}),
                   service.get(f"/datasets/acme-only/vectors/{vector_id(0)}", "globex")):
        assert_error(answer, 404, "DATASET_NOT_FOUND")
    # globex may use the same name for a dataset of its own; acme's is untouched by it
    assert service.post("/datasets", "globex", {"name": "acme-only", "dimensions": DIM, "model": MODEL}).status_code == 201
    assert service.delete("/datasets/acme-only", "globex").json()["deleted_count"] == 0
    assert service.get(f"/datasets/acme-only/vectors/{vector_id(0)}", "acme").json()["content"] == record(0, "acme")["content"]
    assert service.delete("/datasets/acme-only", "acme").json()["deleted_count"] == 1
    assert_error(service.get("/datasets/acme-only", "acme"), 404, "DATASET_NOT_FOUND")


def test_another_tenants_vector_is_404_and_untouchable(service):
    globex_only = vector_id(7)
    service.delete(f"/datasets/notes/vectors/{globex_only}", "acme")  # acme's own 7 goes; globex's must stay
    missing = assert_error(service.get(f"/datasets/notes/vectors/{globex_only}", "acme"), 404, "VECTOR_NOT_FOUND")
    nonexistent = assert_error(service.get(f"/datasets/notes/vectors/{vector_id(999_999)}", "acme"), 404, "VECTOR_NOT_FOUND")
    assert missing["message"] == f"Vector '{globex_only}' not found" and set(missing) == set(nonexistent)
    assert_error(service.delete(f"/datasets/notes/vectors/{globex_only}", "acme"), 404, "VECTOR_NOT_FOUND")
    assert service.get(f"/datasets/notes/vectors/{globex_only}", "globex").json()["content"].startswith("globex note 7")


def test_writes_stay_in_the_callers_tenant(service):
    assert_error(service.post("/datasets/notes/vectors/batch", "acme", {"vectors": [record(500, "globex")]}), 403,
                 "TENANT_MISMATCH")
    assert_error(service.get(f"/datasets/notes/vectors/{vector_id(500)}", "globex"), 404, "VECTOR_NOT_FOUND")
    # The same id as a globex vector, even with overwrite, makes acme's own record and leaves globex's alone.
    same_id = {**record(3, "acme"), "id": vector_id(3), "content": "acme overwrote its own 3"}
    assert service.post("/datasets/notes/vectors/batch", "acme", {"vectors": [same_id], "overwrite": True}).json()["inserted_count"] == 1
    assert service.get(f"/datasets/notes/vectors/{vector_id(3)}", "globex").json()["content"] == "globex note 3: cats purring on the sofa"


def test_the_lakes_sources_and_files_belong_to_the_lake_tenant(service):
    assert_error(service.get("/sources", "acme"), 404, "SOURCE_NOT_FOUND")
    assert_error(service.post("/sources/coco/search", "acme", {"query": "a cat"}), 404, "SOURCE_NOT_FOUND")
    assert_error(service.get(f"/files/{uuid.uuid4()}", "acme"), 404, "SOURCE_NOT_FOUND")
    assert_error(service.get(f"/files/{uuid.uuid4()}", "local"), 404, "FILE_NOT_FOUND")
    assert_error(service.get("/files/..%2F..%2Fetc%2Fpasswd", "local"), 404, "NOT_FOUND")  # no such route
    assert_error(service.get("/files/..", "local"), 404, "NOT_FOUND")
    assert_error(service.get("/files/.etc.passwd", "local"), 404, "FILE_NOT_FOUND")  # ids are UUIDs, never paths


def test_seed_migration_flow(service):
    """New dataset for the new model, parallel population, compare, cut over, clean up: over HTTP."""
    assert service.post("/datasets", "globex", {"name": "old-model", "dimensions": 8, "model": "text-embedding-3-small"}).status_code == 201
    assert service.post("/datasets", "globex", {"name": "new-model", "dimensions": DIM, "model": MODEL}).status_code == 201
    texts = [content(n, "globex") for n in range(6)]
    old = [{"id": vector_id(n), "document_id": "d", "values": unit(n)[:8], "content": text, "metadata": {"tenant_id": "globex"},
            "model": "text-embedding-3-small"} for n, text in enumerate(texts)]
    assert service.post("/datasets/old-model/vectors/batch", "globex", {"vectors": old}).json()["inserted_count"] == 6
    # Parallel population: the same ids and content, re-embedded by the new model.
    new = [{**record, "values": embed(record["content"]), "model": MODEL} for record in old]
    assert service.post("/datasets/new-model/vectors/batch", "globex", {"vectors": new}).json()["inserted_count"] == 6
    # Compare: the new model finds the cat notes from text; both datasets hold the same ids.
    hits = service.post("/datasets/new-model/search", "globex", {"query_text": "a cat on a sofa", "options": {"top_k": 3}}).json()["results"]
    assert all("cats" in hit["content"] for hit in hits)
    ids = {name: {service.get(f"/datasets/{name}/vectors/{vector_id(n)}", "globex").json()["id"] for n in range(6)}
           for name in ("old-model", "new-model")}
    assert ids["old-model"] == ids["new-model"] and len(ids["new-model"]) == 6
    # Cleanup: the old dataset goes whole; the new one serves.
    assert service.delete("/datasets/old-model", "globex").json()["deleted_count"] == 6
    assert_error(service.get("/datasets/old-model", "globex"), 404, "DATASET_NOT_FOUND")
    assert service.get(f"/datasets/new-model/vectors/{vector_id(0)}", "globex").status_code == 200


@pytest.mark.parametrize("text", ['{"values": [0.1, -2.5e-07, 1e308, 3], "id": "caf\\u00e9 \\ud83d\\ude00"}',
                                  '[NaN, Infinity, -Infinity]', '{"n": 123456789012345678901234567890}',
                                  '"plain"', '{"nested": {"a": [true, false, null, {}]}}'])
def test_request_bodies_parse_to_what_the_standard_library_gives(text):
    parsed, expected = parse_json(text.encode()), json.loads(text)
    if isinstance(expected, list) and any(isinstance(v, float) and math.isnan(v) for v in expected):
        assert math.isnan(parsed[0]) and parsed[1:] == expected[1:]
    else:
        assert parsed == expected and json.dumps(parsed) == json.dumps(expected)


def test_malformed_bodies_raise_the_standard_decode_error_at_their_position():
    with pytest.raises(json.JSONDecodeError) as error:
        parse_json(b'{"a": 1,\n "b": [1, 2,, 3]}')
    assert error.value.pos == 21 and "line 2 column" in error.value.msg
