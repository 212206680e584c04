"""Memory retrieval latency on a large generated memory table, project search vs raw Deep Lake.

Builds a memory-embeddings table of `--rows` (default 100k) generated tasks with 384-d unit
vectors, indexes it (clustered on the embedding, BM25 on the task), then measures p50 latency per
mode in the same run:

- bm25:   `bm25_hits` vs the raw BM25 TQL query returning the same columns
- vector: `vector_hits` (`Table.search`, exact from the column held in memory) vs the raw engine's
          over-fetch of 100 from its clustered index + numpy re-rank; also the bare indexed
          `LIMIT k` query, whose recall@10 against exact search shows why the re-rank is there
- hybrid: `hybrid_hits` vs the two raw queries + the same rank fusion

Query vectors are precomputed (the encoder's cost is not the engine's). Prints the ratios.
Usage: python benchmarks/bench_memory_search.py [--rows 100000] [--queries 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np

from dlk_assets.defs.swe_traces import search as memory_search
from dlk_assets.defs.swe_traces.spec import MEMORY
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.retrieval.fusion import reciprocal_rank_fusion
from dlk_assets.retrieval.keywords import keyword_text
from dlk_assets.retrieval.tql import array_literal, identifier, quote_text

# The raw baseline over-fetches from the engine's clustered index and re-ranks exactly (its recall is
# otherwise far below the project's exact in-memory ranking).
RAW_OVERFETCH, RAW_MIN_CANDIDATES = 10, 100

WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "auth token session cookie csrf proxy parse query date json csv yaml cache memory leak deadlock recursion "
    "timeout retry rounding decimal overflow nan path upload migration transaction timezone async race flaky "
    "import packaging flag email header redirect redis worker queue scheduler index shard replica").split()


class FixedEncoder:
    """Hands back precomputed query vectors, so the benchmark times search, not the text model."""

    name, fingerprint, dim = "bench-minilm-shaped", "bench-minilm-shaped@000000000000", 384

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors

    def encode_pooled(self, texts):
        return np.stack([self.vectors[t] for t in texts])


def make_rows(count: int, rng: np.random.Generator) -> tuple[list[dict], np.ndarray]:
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = []
    for i in range(count):
        words = " ".join(rng.choice(WORDS, 8))
        rows.append({
            "row_key": f"swe:{i:08d}", "agent": "terminus-2", "model": "bench", "model_provider": "bench",
            "date": "2025-01-01", "task": f"{words} fn_{i % 5000}", "episode": "episode-0", "run_id": f"run-{i}",
            "trial_name": f"bench__{i}", "outcome": "resolved", "errors": "", "commands": {"commands": []},
            "message_count": 4, "summary": words, "encoder_fingerprint": FixedEncoder.fingerprint,
            "embedding_settings": {}, "embedding": vectors[i],
            "source": "bench", "dagster_run_id": "bench",
        })
    return rows, vectors


def p50_ms(work, queries) -> float:
    times = []
    for query in queries:
        started = time.perf_counter()
        work(query)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows, vectors = make_rows(args.rows, rng)
    texts = [f"{rng.choice(WORDS)} {rng.choice(WORDS)} fn_{rng.integers(5000)}" for _ in range(args.queries)]
    query_vectors = {t: vectors[rng.integers(args.rows)] + 0.3 * rng.standard_normal(384).astype(np.float32) for t in texts}
    query_vectors = {t: (v / np.linalg.norm(v)).astype(np.float32) for t, v in query_vectors.items()}
    encoder = FixedEncoder(query_vectors)
    k = 10
    with tempfile.TemporaryDirectory() as root:
        table = LocalDeepLake(root).table(MEMORY.embeddings_schema(encoder))
        started = time.perf_counter()
        table.replace_partition("shard-00000", rows, "bench rows")
        write_s = time.perf_counter() - started
        table.create_index("embedding", "clustered")
        table.create_index("task", "bm25")
        ds = table._ds  # the raw engine, for the baselines

        columns = ", ".join(identifier(c) for c in ("row_key", *memory_search.RESULT_COLUMNS))

        def materialize(result, names):
            return {name: result[name][:] for name in names}

        def raw_bm25(text, limit=k):
            tql = (f"SELECT {columns} ORDER BY BM25_SIMILARITY({identifier('task')}, {quote_text(keyword_text(text))}) "
                   f"DESC LIMIT {limit}")
            return list(materialize(ds.query(tql), ("row_key", *memory_search.RESULT_COLUMNS))["row_key"])

        def raw_vector(text, limit=k, fetch=None):
            score = f"COSINE_SIMILARITY({identifier('embedding')}, {array_literal(query_vectors[text])})"
            tql = f"SELECT {columns}, {identifier('embedding')}, {score} AS score ORDER BY {score} DESC LIMIT {fetch or limit}"
            data = materialize(ds.query(tql), ("row_key", "embedding", *memory_search.RESULT_COLUMNS))
            if not fetch:
                return list(data["row_key"])
            order = np.argsort(-(np.asarray(data["embedding"]) @ query_vectors[text]), kind="stable")[:limit]
            return [data["row_key"][i] for i in order]

        def raw_reranked(text, limit=k):
            return raw_vector(text, limit, fetch=max(limit * RAW_OVERFETCH, RAW_MIN_CANDIDATES))

        def raw_hybrid(text):
            depth = max(2 * k, 10)
            return reciprocal_rank_fusion([raw_bm25(text, depth), raw_reranked(text, depth)], memory_search.DEFAULT_WEIGHTS)[:k]

        for text in texts[:3]:  # warm caches and indexes
            raw_hybrid(text), raw_vector(text), memory_search.hybrid_hits(table, encoder, text, k)
        timings = {
            "bm25": (p50_ms(lambda t: memory_search.bm25_hits(table, t, k), texts), p50_ms(raw_bm25, texts)),
            "vector": (p50_ms(lambda t: memory_search.vector_hits(table, encoder, t, k), texts), p50_ms(raw_reranked, texts)),
            "hybrid": (p50_ms(lambda t: memory_search.hybrid_hits(table, encoder, t, k), texts), p50_ms(raw_hybrid, texts)),
        }
        bare_index_ms = p50_ms(raw_vector, texts)
        exact = {t: set(np.argsort(-(vectors @ query_vectors[t]))[:k]) for t in texts}
        position = {r["row_key"]: i for i, r in enumerate(rows)}

        def recall(found_keys, text):
            return len({position[key] for key in found_keys} & exact[text]) / k

        project_recall = np.mean([recall([h.row_key for h in memory_search.vector_hits(table, encoder, t, k)], t) for t in texts])
        raw_recall = np.mean([recall(list(raw_vector(t)), t) for t in texts])
    print(json.dumps({
        "rows": args.rows, "queries": args.queries, "k": k, "write_seconds": round(write_s, 2),
        **{f"{mode}_p50_ms": {"project": round(ours, 2), "raw": round(raw, 2), "ratio": round(ours / raw, 2)}
           for mode, (ours, raw) in timings.items()},
        "vector_bare_index_limit_k_p50_ms": round(bare_index_ms, 2),
        "vector_recall_at_10": {"project_overfetch_rerank": round(float(project_recall), 3), "bare_index_limit_k": round(float(raw_recall), 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
