"""Overhead of the project's table layer against raw Deep Lake, measured in the same run.

1. Writes: rows/s through `Table.replace_partition` (validation + append + commit) vs a raw
   `ds.append` + `commit` of the same columnar data into an identically typed dataset.
2. MaxSim search: p50 latency through `Table.search` (TQL compilation + query + result rows) vs
   the raw `ds.query` of the same TQL text, on the same indexed dataset.

Prints both ratios (project / raw; target <= 1.20). Usage: python benchmarks/bench_coco_lake.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import deeplake
import numpy as np

from dlk_assets.lake.deeplake_local import LocalDeepLake, _deeplake_type
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import validate_rows
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets.retrieval.tql import compile_search

DIM, TOKENS = 384, 4
SCHEMA = TableSchema("bench", (
    Column("image_id", Kind.INT), Column("width", Kind.INT), Column("file_id", Kind.TEXT),
    Column("metadata", Kind.JSON), Column("embedding", Kind.MULTI_VECTOR, DIM),
))


def make_rows(count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, TOKENS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    return [{"row_key": f"coco:{i}", "image_id": i, "width": int(200 + i % 600), "file_id": f"{i:032x}",
             "metadata": {"dataset": "coco", "original_id": i}, "embedding": vectors[i]} for i in range(count)]


def time_project_write(root: Path, rows: list[dict]) -> float:
    table = LocalDeepLake(root).table(SCHEMA)
    started = time.perf_counter()
    table.replace_partition("p0", rows, "bench")
    return time.perf_counter() - started


def time_raw_write(root: Path, rows: list[dict]) -> float:
    dataset = deeplake.create(f"file://{root / 'raw'}")
    for column in SCHEMA.all_columns:
        dataset.add_column(column.name, _deeplake_type(column))
    dataset.commit("schema")
    columns = {name: [row.get(name, "p0") for row in rows] for name in SCHEMA.column_names}
    started = time.perf_counter()
    dataset.append(columns)
    dataset.commit("bench")
    return time.perf_counter() - started


def p50_ms(run, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    # Validation is part of the project's cost; check it alone too, so a regression is easy to place.
    started = time.perf_counter()
    validate_rows(SCHEMA, rows, "p0")
    validate_seconds = time.perf_counter() - started

    project_times, raw_times = [], []
    for round_ in range(args.rounds):  # interleaved rounds: the machine is noisy
        with tempfile.TemporaryDirectory() as project_dir, tempfile.TemporaryDirectory() as raw_dir:
            project_times.append(time_project_write(Path(project_dir), rows))
            raw_times.append(time_raw_write(Path(raw_dir), rows))
    project_rate, raw_rate = args.rows / min(project_times), args.rows / min(raw_times)

    with tempfile.TemporaryDirectory() as root:
        table = LocalDeepLake(root).table(SCHEMA)
        table.replace_partition("p0", rows, "bench")
        table.create_index("embedding", "pooled_quantized")
        rng = np.random.default_rng(1)
        queries = [rng.standard_normal((8, DIM)).astype(np.float32) for _ in range(args.queries)]
        searches = [VectorSearch("embedding", q, "maxsim", 10, None, ("image_id", "file_id")) for q in queries]
        assert "Index Scan" in table.explain(searches[0])
        raw_dataset = deeplake.open_read_only(table.url)
        texts = [compile_search(s, SCHEMA) for s in searches]

        def raw_query(i=[0]):
            result = raw_dataset.query(texts[i[0] % len(texts)])
            result["row_key"][:], result["image_id"][:], result["file_id"][:], result["score"][:]
            i[0] += 1

        def project_query(i=[0]):
            table.search(searches[i[0] % len(searches)])
            i[0] += 1

        raw_query(), project_query()  # warm both
        raw_ms, project_ms = [], []
        for _ in range(args.rounds):
            raw_ms.append(p50_ms(raw_query, args.queries))
            project_ms.append(p50_ms(project_query, args.queries))
    raw_p50, project_p50 = min(raw_ms), min(project_ms)

    report = {
        "rows": args.rows, "tokens_per_row": TOKENS, "dim": DIM,
        "write_rows_per_s": {"project": round(project_rate), "raw_deeplake": round(raw_rate)},
        "write_cost_ratio_project_over_raw": round(raw_rate / project_rate, 3),
        "validation_seconds": round(validate_seconds, 3),
        "maxsim_p50_ms": {"project": round(project_p50, 2), "raw_tql": round(raw_p50, 2)},
        "maxsim_latency_ratio_project_over_raw": round(project_p50 / raw_p50, 3),
        "target_ratio_max": 1.20,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
