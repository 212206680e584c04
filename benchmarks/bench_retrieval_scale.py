"""Retrieval at scale through the project's own `Table.search`, beside numpy exact search in the same run.

Anchor data (the issue's): unit 384-d (or 1536-d) vectors drawn from 1024 clusters with
anisotropic noise; ColBERT-like bags of 32 x 128-d tokens for MaxSim, 16 query tokens. Queries are
fresh draws from the same distributions. Every part reports p50 latency over the queries (after one
warm-up query, which reads the column and starts the per-version search structure: its seconds are
`first_query_s`, and `build_s` runs until an inverted file building in the background is done),
recall@10 against exact search, the ratio to numpy exact, and the resident memory the search
structure added (MiB per million vectors or rows).

Parts (each optional):
- `--vectors 100000,1000000`: ingest through `replace_partition` in 10k-row partitions (rows/s per
  block of 100k, and the later half's median block rate over the earlier half's, so a slowdown as
  the table grows shows), then unfiltered and filtered search: filters keeping ~10% and ~50% of rows by cluster (correlated
  with the vectors: whole clusters kept or dropped) and by a random shard (independent of them, like
  a tenant); also Deep Lake's own clustered index (`LIMIT k`) for comparison with the anchor numbers
  (`--skip-engine-index` leaves it out: at 1M rows it takes minutes to build);
- `--wide 100000`: the same search at 1536-d;
- `--maxsim 10000,100000`: MaxSim over token bags;
- `--hybrid 100000`: agent-memory hybrid search against the same fusion of numpy exact legs
  (exact cosine, exact BM25 from inverted lists), with the fused top-10's recall.

Usage: python benchmarks/bench_retrieval_scale.py [--vectors 100000] [--wide 100000] [--maxsim 10000,100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from typing import Self

import numpy as np
from bench_memory_search import p50_ms  # the same p50 as the memory benchmark

from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.vector_scan import top_k
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets.retrieval.tql import array_literal, identifier

CLUSTERS = 1024
PARTITION_ROWS = 10_000
K = 10


def rss_mib() -> float:
    """This process's resident memory now."""
    return _status_mib("VmRSS")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """The process's peak resident memory above where a block started (Linux: VmHWM, reset on entry by
    writing 5 to /proc/self/clear_refs), so each search path's peak is its own, not an earlier part's."""

    def __enter__(self) -> Self:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        self.before = rss_mib()
        return self

    def __exit__(self, *exc_info) -> None:
        self.peak_growth = _status_mib("VmHWM") - self.before

    def per_million(self, rows: int) -> int:
        return round(self.peak_growth * 1_000_000 / rows)


def first_search(table, column: str, mode: str, search: Callable[[], object], rows: int) -> dict:
    """Run the first search (it builds the column's in-memory search structure): its seconds, the bytes
    the structure holds, the process's memory growth and its peak growth while building, all per million
    rows, and the path it takes."""
    with PeakMemory() as peak:
        before, started = rss_mib(), time.perf_counter()
        search()
        first = time.perf_counter() - started
        path = table.describe_search(column, mode)  # waits for an inverted file building in the background
    return {"first_query_s": round(first, 2), "build_s": round(time.perf_counter() - started, 2),
            "search_memory_mib_per_million_rows": {
                "held": round(table._scan_cache[column][1].nbytes / 2**20 * 1_000_000 / rows),
                "rss_growth": round((rss_mib() - before) * 1_000_000 / rows),
                "peak_growth": peak.per_million(rows)},
            "search_path": path}


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return round(float(np.mean([len(f & t) / max(len(t), 1) for f, t in zip(found, truth)])), 4)


class ClusteredVectors:
    """Unit vectors around `CLUSTERS` centres, with per-cluster, per-dimension (anisotropic) noise."""

    def __init__(self, dim: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.centres = rng.standard_normal((CLUSTERS, dim)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        scales = rng.uniform(0.1, 1.0, (CLUSTERS, dim)).astype(np.float32) ** 2
        self.scales = scales / np.linalg.norm(scales, axis=1, keepdims=True)  # noise as long as the centre

    def draw(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cluster = rng.integers(0, CLUSTERS, count)
        vectors = self.centres[cluster] + rng.standard_normal((count, self.dim)).astype(np.float32) * self.scales[cluster]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors, cluster


def vector_schema(dim: int) -> TableSchema:
    return TableSchema(f"bench_vectors_{dim}", (Column("embedding", Kind.VECTOR, dim), Column("group", Kind.INT),
                                                Column("shard", Kind.INT)))


def ingest(table, vectors: np.ndarray, groups: np.ndarray, shards: np.ndarray) -> dict:
    """Write the rows in 10k-row partitions; rows/s overall and per block of 100k rows."""
    rates, started = [], time.perf_counter()
    block_started, block_rows = started, 0
    for start in range(0, len(vectors), PARTITION_ROWS):
        end = min(start + PARTITION_ROWS, len(vectors))
        rows = [{"row_key": f"v{i:08d}", "embedding": vectors[i], "group": int(groups[i]), "shard": int(shards[i])}
                for i in range(start, end)]
        table.replace_partition(f"p{start // PARTITION_ROWS:05d}", rows, "bench rows")
        block_rows += end - start
        if block_rows == 100_000 or end == len(vectors):
            rates.append(round(block_rows / (time.perf_counter() - block_started)))
            block_started, block_rows = time.perf_counter(), 0
    return {"rows_per_s": round(len(vectors) / (time.perf_counter() - started)), "rows_per_s_per_100k_block": rates,
            # Single blocks swing +-40% on this machine (commit timing); halves' medians show a trend.
            "later_half_over_earlier_half": round(float(np.median(rates[len(rates) // 2:]) / np.median(rates[:(len(rates) + 1) // 2])), 2)}


def exact_top(matrix: np.ndarray, query: np.ndarray, rows: np.ndarray | None = None) -> set[int]:
    scores = matrix @ query
    if rows is None:
        return set(top_k(scores, K).tolist())
    return set(rows[top_k(scores[rows], K)].tolist())


def vector_part(size: int, dim: int, queries: int, with_ingest: bool, engine: bool) -> dict:
    rng = np.random.default_rng(size + dim)
    data = ClusteredVectors(dim)
    vectors, clusters = data.draw(size, rng)
    asked, _ = data.draw(queries, np.random.default_rng(1))
    groups = clusters % 10
    shards = rng.integers(0, 10, size)
    result: dict = {"rows": size, "dim": dim}
    with tempfile.TemporaryDirectory() as root:
        table = LocalDeepLake(root).table(vector_schema(dim))
        ingested = ingest(table, vectors, groups, shards)
        if with_ingest:
            result["ingest"] = ingested
        exact_ms = p50_ms(lambda q: exact_top(vectors, q), asked)
        truth = [exact_top(vectors, q) for q in asked]
        key_row = {f"v{i:08d}": i for i in range(size)}

        def project(query, where=None):
            hits = table.search(VectorSearch("embedding", query, "vector", K, where))
            return {key_row[h.row_key] for h in hits}

        result.update(first_search(table, "embedding", "vector", lambda: project(asked[0]), size))
        ours = p50_ms(project, asked)
        result["unfiltered"] = {"numpy_exact_ms": round(exact_ms, 2), "project_ms": round(ours, 2),
                                "ratio": round(ours / exact_ms, 2), "recall_at_10": recall([project(q) for q in asked], truth)}
        filters = (("clusters_10pct", "group == 3", groups == 3), ("clusters_50pct", "group < 5", groups < 5),
                   ("random_10pct", "shard == 3", shards == 3), ("random_50pct", "shard < 5", shards < 5))
        for label, where_text, kept in filters:
            where, rows = parse_filter(where_text), np.flatnonzero(kept)
            began = time.perf_counter()
            with PeakMemory() as peak:
                project(asked[0], where)  # row numbers read and (past 32k rows at 200k+) calibrated once per filter and version
            first_s = time.perf_counter() - began
            base = p50_ms(lambda q, rows=rows: exact_top(vectors, q, rows), asked)
            mine = p50_ms(lambda q, where=where: project(q, where), asked)
            result[label] = {"where": where_text, "first_query_s": round(first_s, 2),
                             "first_query_peak_growth_mib_per_million_rows": peak.per_million(size),
                             "numpy_exact_ms": round(base, 2),
                             "project_ms": round(mine, 2),
                             "ratio": round(mine / base, 2),
                             "recall_at_10": recall([project(q, where) for q in asked], [exact_top(vectors, q, rows) for q in asked])}
        if engine:
            result["deeplake_clustered_index_limit_k"] = engine_index(table, asked, truth, key_row)
    return result


def engine_index(table, asked: np.ndarray, truth: list[set[int]], key_row: dict[str, int]) -> dict:
    """Deep Lake's own index (`ORDER BY COSINE_SIMILARITY … LIMIT k`), for comparison with the anchor."""
    dataset = table._ds

    def raw(query):
        score = f"COSINE_SIMILARITY({identifier('embedding')}, {array_literal(query)})"
        result = dataset.query(f"SELECT row_key ORDER BY {score} DESC LIMIT {K}")
        return {key_row[k] for k in result["row_key"][:]}

    started = time.perf_counter()
    table.create_index("embedding", "clustered")  # commits leave index work to this, run once after ingestion
    built = time.perf_counter() - started
    raw(asked[0])
    return {"index_build_s": round(built, 2), "ms": round(p50_ms(raw, asked), 2), "recall_at_10": recall([raw(q) for q in asked], truth)}


def token_bags(count: int, tokens: int, rng: np.random.Generator, aspects: np.ndarray) -> np.ndarray:
    """Bags of unit tokens: each bag picks a topic, each token one of the topic's aspects plus noise."""
    topic = rng.integers(0, len(aspects), count)
    aspect = rng.integers(0, aspects.shape[1], (count, tokens))
    bags = aspects[topic[:, None], aspect] + rng.standard_normal((count, tokens, aspects.shape[2])).astype(np.float32) / np.sqrt(aspects.shape[2])
    bags /= np.linalg.norm(bags, axis=2, keepdims=True)
    return bags


def maxsim_part(size: int, queries: int) -> dict:
    rng = np.random.default_rng(size)
    dim = 128
    centres = rng.standard_normal((CLUSTERS, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    aspects = centres[:, None, :] + rng.standard_normal((CLUSTERS, 8, dim)).astype(np.float32) * (0.8 / np.sqrt(dim))
    bags = np.concatenate([token_bags(min(20_000, size - s), 32, rng, aspects) for s in range(0, size, 20_000)])
    asked = token_bags(queries, 16, np.random.default_rng(1), aspects)
    flat = bags.reshape(-1, dim)

    def exact(query):
        return set(top_k((flat @ query.T).reshape(size, 32, -1).max(axis=1).sum(axis=1), K).tolist())

    schema = TableSchema("bench_bags", (Column("tokens", Kind.MULTI_VECTOR, dim),))
    result: dict = {"rows": size, "tokens_per_row": 32, "dim": dim, "query_tokens": 16}
    with tempfile.TemporaryDirectory() as root:
        table = LocalDeepLake(root).table(schema)
        started = time.perf_counter()
        for start in range(0, size, PARTITION_ROWS):
            end = min(start + PARTITION_ROWS, size)
            table.replace_partition(f"p{start // PARTITION_ROWS:05d}",
                                    [{"row_key": f"d{i:08d}", "tokens": bags[i]} for i in range(start, end)], "bench bags")
        result["ingest_rows_per_s"] = round(size / (time.perf_counter() - started))
        key_row = {f"d{i:08d}": i for i in range(size)}

        def project(query):
            return {key_row[h.row_key] for h in table.search(VectorSearch("tokens", query, "maxsim", K))}

        result.update(first_search(table, "tokens", "maxsim", lambda: project(asked[0]), size))
        exact_ms, ours = p50_ms(exact, asked), p50_ms(project, asked)
        result["numpy_exact_ms"], result["project_ms"] = round(exact_ms, 2), round(ours, 2)
        result["ratio"] = round(ours / exact_ms, 3)
        result["recall_at_10"] = recall([project(q) for q in asked], [exact(q) for q in asked])
    return result


class Bm25:
    """Exact BM25 (k1 1.2, b 0.75) over whitespace words, from an inverted list per word: the numpy baseline."""

    def __init__(self, texts: list[str]):
        postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths = np.array([len(t.split()) for t in texts], dtype=np.float32)
        for row, text in enumerate(texts):
            words, counts = np.unique(text.lower().split(), return_counts=True)
            for word, count in zip(words.tolist(), counts.tolist()):
                postings.setdefault(word, []).append((row, count))
        self.postings = {w: (np.array([r for r, _ in p]), np.array([c for _, c in p], np.float32)) for w, p in postings.items()}
        self.rows, self.mean_length = len(texts), float(self.lengths.mean())

    def top(self, text: str, k: int) -> np.ndarray:
        scores = np.zeros(self.rows, dtype=np.float32)
        for word in set(text.lower().split()):
            if word not in self.postings:
                continue
            rows, counts = self.postings[word]
            idf = np.log(1 + (self.rows - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = counts + 1.2 * (0.25 + 0.75 * self.lengths[rows] / self.mean_length)
            scores[rows] += idf * counts * 2.2 / norm
        return top_k(scores, k)


def hybrid_part(size: int, queries: int) -> dict:
    """Agent-memory hybrid search (`hybrid_hits`: BM25 and vector legs, union re-scored) against the same
    fusion computed from numpy exact legs (exact cosine, exact BM25)."""
    from bench_memory_search import (  # the memory benchmark's generated traces
        FixedEncoder,
        make_rows,
    )

    from dlk_assets.defs.swe_traces import search as memory_search
    from dlk_assets.defs.swe_traces.spec import MEMORY
    from dlk_assets.retrieval.fusion import identifier_fusion
    from dlk_assets.retrieval.keywords import keyword_text, query_terms
    from dlk_assets.retrieval.text_modes import fusion_depth

    rng = np.random.default_rng(size)
    rows, vectors = make_rows(size, rng)
    data = ClusteredVectors(384)
    vectors, _ = data.draw(size, rng)  # the anchor's clustered vectors rather than uniform noise
    for row, vector in zip(rows, vectors):
        row["embedding"] = vector
    words = [r["task"] for r in rows]
    texts = [" ".join(rng.choice(w.split(), 3)) for w in (words[i] for i in rng.integers(0, size, queries))]
    asked, _ = data.draw(queries, np.random.default_rng(2))
    encoder = FixedEncoder(dict(zip(texts, asked)))
    depth = fusion_depth(K)
    bm25 = Bm25([r["task"] for r in rows])
    terms = {t: query_terms(t) for t in texts}

    def exact(text):
        vector = encoder.vectors[text]
        cosines = vectors @ vector
        union = [*top_k(cosines, depth).tolist(), *bm25.top(keyword_text(text), depth).tolist()]
        fused = identifier_fusion([(i, float(cosines[i]), rows[i]["task"]) for i in union], terms[text], K)
        return [i for i, _ in fused]

    result: dict = {"rows": size, "fusion": "cosine + identifier bonus over the union of both legs' top 2k"}
    with tempfile.TemporaryDirectory() as root:
        table = LocalDeepLake(root).table(MEMORY.embeddings_schema(encoder))
        for start in range(0, size, PARTITION_ROWS):
            table.replace_partition(f"p{start // PARTITION_ROWS:05d}", rows[start:start + PARTITION_ROWS], "bench rows")
        table.create_index("task", "bm25")
        key_row = {r["row_key"]: i for i, r in enumerate(rows)}

        def project(text):
            return [key_row[h.row_key] for h in memory_search.hybrid_hits(table, encoder, text, K)]

        with PeakMemory() as peak:  # the vector leg's structure and the BM25 leg's first query
            project(texts[0])
            p50_ms(project, texts)
        exact_ms, ours = p50_ms(exact, texts), p50_ms(project, texts)
        result["peak_growth_mib_per_million_rows"] = peak.per_million(size)
        result.update({"numpy_exact_ms": round(exact_ms, 2), "project_ms": round(ours, 2), "ratio": round(ours / exact_ms, 2),
                       "fused_recall_at_10": recall([set(project(t)) for t in texts], [set(exact(t)) for t in texts])})
    return result


def sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip() and int(s) > 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", default="100000", help="table sizes for 384-d search and ingest")
    parser.add_argument("--wide", default="100000", help="table sizes for 1536-d search")
    parser.add_argument("--maxsim", default="10000,100000", help="row counts for MaxSim")
    parser.add_argument("--hybrid", default="100000", help="row counts for agent-memory hybrid search")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--skip-engine-index", action="store_true", help="leave out Deep Lake's own clustered index")
    args = parser.parse_args()
    report = {"k": K, "queries": args.queries}
    engine = not args.skip_engine_index
    report["vector_384"] = [vector_part(n, 384, args.queries, True, engine) for n in sizes(args.vectors)]
    report["vector_1536"] = [vector_part(n, 1536, args.queries, False, engine) for n in sizes(args.wide)]
    report["maxsim"] = [maxsim_part(n, args.queries) for n in sizes(args.maxsim)]
    report["hybrid"] = [hybrid_part(n, args.queries) for n in sizes(args.hybrid)]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
