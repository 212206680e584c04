"""Overhead of the project's table layer against raw Deep Lake, measured in the same run.

1. Writes: rows/s through `Table.replace_partition` (validation + append + commit) vs a raw
   `ds.append` + `commit` of the same row dicts (turned into columns, as any caller must) into an
   identically typed dataset. Two workloads:
   - `uniform`: 4 tokens x 384-d per row, an int, a text and a small JSON column;
   - `coco_embeddings`: the columns of `coco_image_embeddings` (ragged label bags of 1-5 tokens,
     labels and metadata JSON, category ids, lineage text). The 1280-d `image_features` column is
     left out: its clustered index build at commit is engine time on both sides and only dilutes
     the ratio.
   Each write ratio is the median over paired rounds run in alternating order.
2. MaxSim search: p50 latency through `Table.search` (TQL compilation + query + result rows) vs
   the raw `ds.query` of the same TQL text, on the same indexed dataset.

Prints every ratio (project / raw; target <= 1.20).
Usage: python benchmarks/bench_coco_lake.py [--rows N] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import deeplake
import numpy as np

from dlk_assets.defs.coco.spec import COCO
from dlk_assets.encoders.base import Output
from dlk_assets.lake.deeplake_local import LocalDeepLake, _deeplake_type
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import validate_rows
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets.retrieval.tql import compile_search

DIM, TOKENS = 384, 4
UNIFORM = TableSchema("bench", (
    Column("image_id", Kind.INT), Column("width", Kind.INT), Column("file_id", Kind.TEXT),
    Column("metadata", Kind.JSON), Column("embedding", Kind.MULTI_VECTOR, DIM),
))
# The columns of the real coco_image_embeddings table for an encoder making label bags (no model is loaded).
BENCH_ENCODER = SimpleNamespace(fingerprint="bench-labels@000000000000", dim=DIM, feature_dim=None,
                                outputs=frozenset({Output.MULTI_VECTOR, Output.LABELS}))
COCO_EMBEDDINGS = COCO.embeddings_schema(BENCH_ENCODER)
CATEGORIES = ("person", "cat", "dog", "cup", "rocket", "horse", "clock", "bicycle")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def uniform_rows(count: int, seed: int = 0) -> list[dict]:
    vectors = unit_rows(np.random.default_rng(seed).standard_normal((count, TOKENS, DIM)).astype(np.float32))
    return [{"row_key": f"coco:{i}", "image_id": i, "width": int(200 + i % 600), "file_id": f"{i:032x}",
             "metadata": {"dataset": "coco", "original_id": i}, "embedding": vectors[i]} for i in range(count)]


def coco_embedding_rows(count: int, seed: int = 0) -> list[dict]:
    """Rows shaped like the label encoder's output: each bag is its own array of 1-5 label vectors."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        tokens = int(rng.integers(1, 6))
        names = [CATEGORIES[int(c)] for c in rng.integers(0, len(CATEGORIES), tokens)]
        category_ids = sorted({int(c) for c in rng.integers(1, 91, int(rng.integers(0, 6)))})
        rows.append({
            "row_key": f"coco:{i}", "image_id": i, "width": int(200 + i % 600), "height": int(150 + i % 450),
            "category_ids": category_ids, "file_id": f"{i:032x}", "sha256": f"{i:064x}",
            "metadata": {"dataset": "coco", "original_id": i, "categories": names, "stream_position": i},
            "encoder_fingerprint": BENCH_ENCODER.fingerprint, "embedding_settings": {},
            "labels": {"labels": [{"name": n, "probability": round(float(p), 6)} for n, p in zip(names, rng.random(tokens))]},
            "embedding": unit_rows(rng.standard_normal((tokens, DIM)).astype(np.float32)),
            "source": "detection-datasets/coco", "dagster_run_id": "bench-run",
        })
    return rows


def time_project_write(root: Path, schema: TableSchema, rows: list[dict]) -> float:
    table = LocalDeepLake(root).table(schema)
    started = time.perf_counter()
    table.replace_partition("p0", rows, "bench")
    return time.perf_counter() - started


def time_raw_write(root: Path, schema: TableSchema, rows: list[dict]) -> float:
    dataset = deeplake.create(f"file://{root / 'raw'}")
    for column in schema.all_columns:
        dataset.add_column(column.name, _deeplake_type(column))
    dataset.commit("schema")
    started = time.perf_counter()  # both sides start from the same row dicts
    columns = {name: [row.get(name, "p0") for row in rows] for name in schema.column_names}
    dataset.append(columns)
    dataset.commit("bench")
    return time.perf_counter() - started


def measure_writes(schema: TableSchema, rows: list[dict], rounds: int, directory: str | None) -> dict:
    """Paired project/raw writes in alternating order (whichever goes second finds warmer caches)."""
    project_times, raw_times = [], []
    for round_ in range(rounds):
        with tempfile.TemporaryDirectory(dir=directory) as project_dir, tempfile.TemporaryDirectory(dir=directory) as raw_dir:
            writes = [lambda: project_times.append(time_project_write(Path(project_dir), schema, rows)),
                      lambda: raw_times.append(time_raw_write(Path(raw_dir), schema, rows))]
            for write in (writes if round_ % 2 == 0 else writes[::-1]):
                write()
    # Validation is part of the project's cost; time it alone too, so a regression is easy to place.
    started = time.perf_counter()
    validate_rows(schema, rows, "p0")
    validation_seconds = time.perf_counter() - started
    ratios = sorted(p / r for p, r in zip(project_times, raw_times))
    return {
        "rows": len(rows),
        "rows_per_s_median": {"project": round(len(rows) / statistics.median(project_times)),
                              "raw_deeplake": round(len(rows) / statistics.median(raw_times))},
        "validation_seconds": round(validation_seconds, 3),
        "cost_ratio_project_over_raw": round(statistics.median(ratios), 3),
        "paired_round_ratios": [round(r, 3) for r in ratios],
    }


def measure_maxsim(rows: list[dict], queries: int, rounds: int) -> dict:
    """p50 over every query of every round; raw and project queries alternate one by one, so drift
    on a noisy machine hits both sides alike."""
    with tempfile.TemporaryDirectory() as root:
        table = LocalDeepLake(root).table(UNIFORM)
        table.replace_partition("p0", rows, "bench")
        table.create_index("embedding", "pooled_quantized")
        rng = np.random.default_rng(1)
        searches = [VectorSearch("embedding", rng.standard_normal((8, DIM)).astype(np.float32), "maxsim", 10, None,
                                 ("image_id", "file_id")) for _ in range(queries)]
        assert "Index Scan" in table.explain(searches[0])
        raw_dataset = deeplake.open_read_only(table.url)
        texts = [compile_search(s, UNIFORM) for s in searches]

        def raw_query(i: int) -> None:
            result = raw_dataset.query(texts[i])
            result["row_key"][:], result["image_id"][:], result["file_id"][:], result["score"][:]

        def project_query(i: int) -> None:
            table.search(searches[i])

        raw_query(0), project_query(0)  # warm both
        samples: dict[str, list[float]] = {"raw": [], "project": []}
        for round_ in range(rounds):
            for i in range(queries):
                pair = [("raw", raw_query), ("project", project_query)]
                for side, run in (pair if (round_ + i) % 2 == 0 else pair[::-1]):
                    started = time.perf_counter()
                    run(i)
                    samples[side].append((time.perf_counter() - started) * 1000)
    raw_p50, project_p50 = statistics.median(samples["raw"]), statistics.median(samples["project"])
    return {"p50_ms": {"project": round(project_p50, 2), "raw_tql": round(raw_p50, 2)},
            "latency_ratio_project_over_raw": round(project_p50 / raw_p50, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="query rounds")
    parser.add_argument("--write-rounds", type=int, default=9)
    parser.add_argument("--dir", default=None, help="where written datasets go (default: the system temp dir)")
    args = parser.parse_args()
    uniform = uniform_rows(args.rows)
    report = {
        "dim": DIM, "uniform_tokens_per_row": TOKENS, "coco_tokens_per_row": "1-5",
        "write_uniform": measure_writes(UNIFORM, uniform, args.write_rounds, args.dir),
        "write_coco_embeddings": measure_writes(COCO_EMBEDDINGS, coco_embedding_rows(args.rows), args.write_rounds, args.dir),
        "maxsim": measure_maxsim(uniform, args.queries, args.rounds),
        "target_ratio_max": 1.20,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
