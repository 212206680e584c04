"""The lake's own sources through `dlk serve` over real HTTP (no browser): file bytes by `file_id`
with their content type, memory search in each mode, and the documents dataset from text."""

from __future__ import annotations

import hashlib

import requests


def call(demo, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {demo.keys['local']}"}
    return requests.request(method, f"{demo.base}/api/v1{path}", headers=headers, timeout=60, **kwargs)


def test_a_hits_file_comes_back_byte_for_byte_with_its_content_type(demo_service):
    store = demo_service.resources["files"].store()
    for source, query in (("coco", "a cat"), ("videos", "a cat")):
        answer = call(demo_service, "POST", f"/sources/{source}/search", json={"query": query, "top_k": 2})
        assert answer.status_code == 200, answer.text
        hit = answer.json()["results"][0]
        stored = store.stat(hit["values"]["file_id"])
        got = call(demo_service, "GET", hit["file_url"].removeprefix("/api/v1"))
        assert got.status_code == 200 and got.content == store.get(stored.file_id)
        assert hashlib.sha256(got.content).hexdigest() == stored.sha256 == got.headers["ETag"].strip('"')
        assert got.headers["Content-Type"] == stored.content_type
        assert got.headers["Content-Type"].startswith("image/" if source == "coco" else "video/")


def test_memory_answers_in_every_mode_and_hybrid_keeps_the_identifier_first(demo_service):
    results = {}
    for mode in ("vector", "bm25", "hybrid"):
        answer = call(demo_service, "POST", "/sources/memory/search", json={"query": "refresh_session_token", "mode": mode})
        assert answer.status_code == 200 and answer.json()["mode"] == mode, answer.text
        results[mode] = answer.json()["results"]
        path = answer.json()["search_path"]  # the vector leg's path and the recall it delivers
        assert path == "BM25 on Deep Lake's bm25 index" if mode == "bm25" else "recall 1.0" in path, path
        assert results[mode] and all(hit["row_key"].startswith("swe:") for hit in results[mode])
    # An identifier query: BM25 finds the traces holding it, and hybrid puts one of those first.
    assert "refresh_session_token" in results["bm25"][0]["values"]["task"]
    assert "refresh_session_token" in results["hybrid"][0]["values"]["task"]


def test_the_documents_dataset_answers_text_questions_for_the_lake_tenant(demo_service):
    answer = call(demo_service, "POST", "/datasets/documents/search",
                  json={"query_text": "how do I add a new source", "options": {"top_k": 3, "mode": "hybrid"}})
    assert answer.status_code == 200, answer.text
    hits = answer.json()["results"]
    assert hits and all(hit["metadata"]["tenant_id"] == "local" for hit in hits)
    listed = {info["name"] for info in call(demo_service, "GET", "/datasets").json()}
    assert "documents" in listed
