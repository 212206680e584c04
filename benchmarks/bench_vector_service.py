"""The vector service beside the seed's performance table, as ratios measured in the same run.

For each size (default 1k, 10k, 100k; add 1000000 with --sizes) builds a 384-d dataset of one tenant
three ways and searches it. Records are agent-memory-shaped: unit vectors drawn around the MiniLM
embeddings of 1024 short incident notes, so vector queries (drawn the same way) and text queries
(MiniLM embeddings of questions about such incidents) land where the records are, as they do on
real memory:

- raw engine: `deeplake` appends of the same columns in batches of 1000 (one commit each), and the
  tenant-filtered `ORDER BY COSINE_SIMILARITY … LIMIT 10` TQL query;
- layer:      `VectorStore.insert_batch` (validation, per-tenant keys, the table lock, a commit per batch)
              and `VectorStore.search` (tenant-scoped, exact filtered ranking);
- service:    the same through `dlk serve` over HTTP on 127.0.0.1 (batch insert, search by vector),
              from one keep-alive `http.client` connection.

Searches are measured once the search structure of the last version is final (an inverted file
from 100k rows is built in the background after the first search; `GET /datasets/{id}` says so).
Only the calls are timed: request bodies are built (and, for HTTP, JSON-encoded) beforehand, so the
client's own work is not counted against the layer or the service.

Prints records/s and p50 latency with ratios (layer / raw, service / layer, and the service's added
milliseconds: per request, the round trip less the `query_time_ms` the service reports), get-by-id p50
(a raw `id ==` query; `VectorStore.get`; `GET /vectors/{id}`), the layer's search right after writing one record
(as an agent writes a memory, then searches: every write makes a new table version), recall@10 of each search against numpy exact
search over the tenant's rows, and memory search from text through the warm service (`query_text`, MiniLM in-process).
The seed's figures: batch insert 10-15k vectors/s; search < 10 / 50 / 100 / 200 ms at 1k / 10k / 100k / 1M.
Usage: python benchmarks/bench_vector_service.py [--sizes 1000,10000,100000] [--queries 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import deeplake
import numpy as np

from dlk_assets.encoders.minilm import MiniLMTextEncoder
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.retrieval.tql import array_literal
from dlk_assets.vectors.records import (
    DatasetCreate,
    SearchOptions,
    SearchRequest,
    VectorBatchInsert,
)
from dlk_assets.vectors.store import VectorStore

DIM, BATCH, TENANT, KEY = 384, 1000, "bench", "bench-key-0000000000000000"
MODEL = "all-MiniLM-L6-v2"


SUBJECTS = ("the deploy", "the login service", "the nightly backup", "the payment worker", "the search index",
            "the CI pipeline", "the cache layer", "the image resizer")
PROBLEMS = ("timed out", "ran out of memory", "crashed on startup", "returned stale data", "leaked file handles",
            "dropped requests", "hit a deadlock", "failed TLS verification", "lost its database connection",
            "wrote duplicate rows", "exceeded its rate limit", "corrupted a config file", "stalled on a lock",
            "filled the disk", "rejected valid tokens", "spun at full CPU")
PLACES = ("in staging", "in production", "after the upgrade", "during the migration", "on the new cluster",
          "under peak load", "after a restart", "on arm64 nodes")


def memory_centres(encoder: MiniLMTextEncoder) -> np.ndarray:
    """MiniLM embeddings of 1024 incident notes (subject x problem x place), unit length."""
    notes = [f"{subject} {problem} {place}" for subject in SUBJECTS for problem in PROBLEMS for place in PLACES]
    return encoder.encode_pooled(notes)


def text_queries(count: int, rng: np.random.Generator) -> list[str]:
    """Questions about such incidents, worded unlike the notes."""
    return [f"why has {SUBJECTS[rng.integers(len(SUBJECTS))]} {PROBLEMS[rng.integers(len(PROBLEMS))]} again?"
            for _ in range(count)]


def make_vectors(count: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around the centres: each a centre plus noise of norm ~0.35."""
    noise = 0.35 / np.sqrt(DIM) * rng.standard_normal((count, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), count)] + noise
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def records(vectors: np.ndarray, start: int, stop: int) -> list[dict]:
    return [{"id": record_id(i), "document_id": f"doc-{i // 8}", "values": vectors[i].tolist(),
             "content": f"chunk {i} of document {i // 8}", "chunk_index": i % 8, "chunk_count": 8,
             "metadata": {"tenant_id": TENANT, "shard": i % 16}} for i in range(start, stop)]


def record_id(row: int) -> str:
    return str(uuid.UUID(int=row + 1, version=4))


def rows_to_get(size: int, count: int) -> list[int]:
    """Row numbers of `count` records spread over the dataset, for get-by-id."""
    return [int(row) for row in np.linspace(0, size - 1, count).astype(int)]


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def recall(found: list[str], truth: list[str]) -> float:
    return len(set(found) & set(truth)) / len(truth)


def raw_engine(folder: Path, vectors: np.ndarray, queries: np.ndarray) -> dict:
    ds = deeplake.create(f"file://{folder}")
    ds.indexing_mode = deeplake.IndexingMode.Always
    for name, kind in (("row_key", deeplake.types.Text()), ("tenant_id", deeplake.types.Text()),
                       ("id", deeplake.types.Text()), ("content", deeplake.types.Text()),
                       ("metadata", deeplake.types.Dict()), ("embedding", deeplake.types.Embedding(DIM))):
        ds.add_column(name, kind)
    insert_s = 0.0
    for start in range(0, len(vectors), BATCH):
        stop = min(start + BATCH, len(vectors))
        columns = {"row_key": [f"{TENANT}/{i}" for i in range(start, stop)], "tenant_id": [TENANT] * (stop - start),
                   "id": [str(i) for i in range(start, stop)], "content": [f"chunk {i}" for i in range(start, stop)],
                   "metadata": [{"tenant_id": TENANT} for _ in range(start, stop)], "embedding": vectors[start:stop]}
        began = time.perf_counter()
        ds.append(columns)
        ds.commit()
        insert_s += time.perf_counter() - began
    times, hits = [], []
    for query in queries:
        began = time.perf_counter()
        result = ds.query(f"SELECT id WHERE tenant_id == '{TENANT}' ORDER BY COSINE_SIMILARITY(embedding, "
                          f"{array_literal(query)}) DESC LIMIT 10")
        hits.append([record_id(int(v)) for v in result["id"][:]])
        times.append(time.perf_counter() - began)
    get_times = []
    for row in rows_to_get(len(vectors), len(queries)):  # the raw table's id is the row number
        began = time.perf_counter()
        result = ds.query(f"SELECT * WHERE tenant_id == '{TENANT}' AND id == '{row}'")
        assert len(result) == 1 and np.asarray(result["embedding"][0]).shape == (DIM,)
        get_times.append(time.perf_counter() - began)
    return {"insert_per_s": len(vectors) / insert_s, "search_p50_ms": p50(times), "hits": hits, "get_p50_ms": p50(get_times)}


def layer(folder: Path, vectors: np.ndarray, queries: np.ndarray) -> tuple[dict, VectorStore]:
    store = VectorStore(LocalDeepLake(folder))
    store.create_dataset(DatasetCreate(name="bench", dimensions=DIM, model=MODEL), TENANT)
    insert_s = 0.0
    for start in range(0, len(vectors), BATCH):
        batch = VectorBatchInsert(vectors=records(vectors, start, min(start + BATCH, len(vectors))))
        began = time.perf_counter()
        answer = store.insert_batch("bench", TENANT, batch)
        insert_s += time.perf_counter() - began
        assert answer.failed_count == 0, answer.error_messages[:3]
    store.search("bench", TENANT, SearchRequest(query_vector=queries[0].tolist()))  # reads the column
    store.dataset("bench", TENANT)[1].describe_search("embedding")  # waits for an inverted file building in the background
    times, hits = [], []
    for query in queries:
        request = SearchRequest(query_vector=query.tolist(), options=SearchOptions(
            top_k=10, include_content=False, include_metadata=False))
        began = time.perf_counter()
        response = store.search("bench", TENANT, request)
        times.append(time.perf_counter() - began)
        hits.append([hit.id for hit in response.results])
    get_times = []
    for wanted in map(record_id, rows_to_get(len(vectors), len(queries))):
        began = time.perf_counter()
        assert store.get("bench", TENANT, wanted).id == wanted
        get_times.append(time.perf_counter() - began)
    # Memory as an agent uses it: write one record, then search. Every write is a new table version.
    grown, after_write = np.concatenate((vectors, queries)), []
    for offset, query in enumerate(queries):
        assert store.insert_batch("bench", TENANT, VectorBatchInsert(
            vectors=records(grown, len(vectors) + offset, len(vectors) + offset + 1))).inserted_count == 1
        request = SearchRequest(query_vector=query.tolist(), options=SearchOptions(
            top_k=10, include_content=False, include_metadata=False))
        began = time.perf_counter()
        assert store.search("bench", TENANT, request).results[0].id == record_id(len(vectors) + offset)
        after_write.append(time.perf_counter() - began)
    return {"insert_per_s": len(vectors) / insert_s, "search_p50_ms": p50(times), "hits": hits,
            "get_p50_ms": p50(get_times), "search_after_write_p50_ms": p50(after_write)}, store


class Client:
    """One keep-alive HTTP/1.1 connection to the service, sending pre-encoded JSON bodies."""

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def wait_until_up(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.call("/health", None, method="GET")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                self.connection.close()
                time.sleep(0.2)

    def call(self, path: str, body: bytes | None, method: str = "POST") -> dict:
        try:
            self.connection.request(method, "/api/v1" + path, body=body, headers=self.headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # uvicorn closes a keep-alive connection idle for 5 s; the request never reached it: reconnect.
            self.connection.close()
            self.connection.request(method, "/api/v1" + path, body=body, headers=self.headers)
            response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {str(answer)[:300]}")
        return answer


def service(home: Path, vectors: np.ndarray, queries: np.ndarray, text_queries: list[str]) -> dict:
    keys = home / "keys.txt"
    keys.write_text(f"{KEY} {TENANT}\n")
    port = 18000 + int(time.time()) % 1000
    process = subprocess.Popen([sys.executable, "-m", "dlk_assets.cli", "serve", "--port", str(port), "--api-keys", str(keys),
                                "--no-warm-up", "--log-level", "warning"], env={"DAGSTER_HOME": str(home), "PATH": ""},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(port)
    try:
        client.wait_until_up()
        client.call("/datasets", json.dumps({"name": "bench", "dimensions": DIM, "model": MODEL}).encode())
        insert_s = 0.0
        for start in range(0, len(vectors), BATCH):
            body = json.dumps({"vectors": records(vectors, start, min(start + BATCH, len(vectors)))}).encode()
            began = time.perf_counter()
            answer = client.call("/datasets/bench/vectors/batch", body)
            insert_s += time.perf_counter() - began
            assert answer["failed_count"] == 0, answer["error_messages"][:3]
        client.call("/datasets/bench/search", json.dumps({"query_vector": queries[0].tolist()}).encode())
        while "while" in client.call("/datasets/bench", None, method="GET")["search_path"]:
            time.sleep(0.5)  # an inverted file is being built in the background; measure what searches settle on
        times, added, hits = [], [], []
        for query in queries:
            body = json.dumps({"query_vector": query.tolist(),
                               "options": {"top_k": 10, "include_content": False, "include_metadata": False}}).encode()
            began = time.perf_counter()
            answer = client.call("/datasets/bench/search", body)
            times.append(time.perf_counter() - began)
            added.append(times[-1] - answer["query_time_ms"] / 1000)  # the round trip beyond the layer's own search
            hits.append([hit["id"] for hit in answer["results"]])
        text_times, text_hits = [], []
        client.call("/datasets/bench/search", b'{"query_text": "warm up"}')  # loads MiniLM once
        for text in text_queries:
            body = json.dumps({"query_text": text, "options": {"top_k": 10}}).encode()
            began = time.perf_counter()
            answer = client.call("/datasets/bench/search", body)
            text_times.append(time.perf_counter() - began)
            text_hits.append([hit["id"] for hit in answer["results"]])
        get_times = []
        for wanted in map(record_id, rows_to_get(len(vectors), len(queries))):
            began = time.perf_counter()
            assert client.call(f"/datasets/bench/vectors/{wanted}", None, method="GET")["id"] == wanted
            get_times.append(time.perf_counter() - began)
        return {"insert_per_s": len(vectors) / insert_s, "search_p50_ms": p50(times), "hits": hits,
                "added_p50_ms": p50(added), "text_search_p50_ms": p50(text_times), "text_hits": text_hits,
                "get_p50_ms": p50(get_times)}
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    encoder = MiniLMTextEncoder()
    centres = memory_centres(encoder)
    seed_targets = {1000: 10, 10_000: 50, 100_000: 100, 1_000_000: 200}
    texts = text_queries(args.queries, np.random.default_rng(1))
    text_vectors = encoder.encode_pooled(texts)
    for size in (int(s) for s in args.sizes.split(",")):
        vectors = make_vectors(size, rng, centres)
        queries = make_vectors(args.queries, rng, centres)
        def exact_ids(query: np.ndarray, vectors: np.ndarray = vectors) -> list[str]:
            return [record_id(int(i)) for i in np.argsort(-(vectors @ query), kind="stable")[:10]]

        truth = [exact_ids(q) for q in queries]
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            raw = raw_engine(root / "raw", vectors, queries)
            direct, _ = layer(root / "layer", vectors, queries)
            home = root / "home"
            home.mkdir()
            served = service(home, vectors, queries, texts)
        row = {
            "records": size,
            "insert_per_s": {"raw": round(raw["insert_per_s"]), "layer": round(direct["insert_per_s"]),
                             "service": round(served["insert_per_s"])},
            "insert_ratio_layer_vs_raw": round(direct["insert_per_s"] / raw["insert_per_s"], 2),
            "search_p50_ms": {"raw": round(raw["search_p50_ms"], 2), "layer": round(direct["search_p50_ms"], 2),
                              "service": round(served["search_p50_ms"], 2)},
            "search_ratio_layer_vs_raw": round(direct["search_p50_ms"] / raw["search_p50_ms"], 2),
            "layer_search_right_after_a_write_p50_ms": round(direct["search_after_write_p50_ms"], 2),
            "get_by_id_p50_ms": {name: round(result["get_p50_ms"], 2) for name, result in
                                 (("raw", raw), ("layer", direct), ("service", served))},
            # Per request: the round trip less the search time the service reports (`query_time_ms`, the
            # layer's work inside the same request); the p50 difference across processes is noisier.
            "service_adds_ms": round(served["added_p50_ms"], 2),
            "service_minus_layer_p50_ms": round(served["search_p50_ms"] - direct["search_p50_ms"], 2),
            "recall_at_10": {name: round(float(np.mean([recall(h, t) for h, t in zip(result["hits"], truth)])), 3)
                             for name, result in (("raw", raw), ("layer", direct), ("service", served))},
            "text_search_through_service_p50_ms": round(served["text_search_p50_ms"], 2),
            "text_search_recall_at_10": round(float(np.mean([recall(h, exact_ids(q)) for h, q in
                                                             zip(served["text_hits"], text_vectors)])), 3),
            "seed_search_target_ms": seed_targets.get(size),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
