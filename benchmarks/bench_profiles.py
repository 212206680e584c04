"""Upload throughput and search latency per profile, as ratios against the local profile in the same run.

- Files: MB/s of `put_file` for a batch of 1 MiB files and one 64 MiB file, through the local store,
  the S3 store (a moto server on 127.0.0.1, the object-storage profile) and the HTTP /files store
  (the loopback stand-in of the Deep Lake PG files API, the deeplake-pg profile).
- Tables: rows/s of `replace_partition` and p50 latency of `Table.search` (k=10, 384-d cosine, with
  and without a filter) on the local lake and on the object-storage lake (moto).

Deep Lake PG tables cannot be measured here (no pg_deeplake server); the row says so. Loopback
servers measure the client path and the protocol, not a real network or a real service.
Usage: python benchmarks/bench_profiles.py [--rows 20000] [--files 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlk_assets.lake.deeplake_local import LocalDeepLake, ObjectStoreDeepLake
from dlk_assets.lake.http_files import HttpFileStore
from dlk_assets.lake.local_files import LocalFileStore
from dlk_assets.lake.s3_files import S3FileStore
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets_tests.files_api_server import FilesApiServer
from dlk_assets_tests.local_servers import moto_server

DIM = 384
VECTORS = TableSchema("bench_vectors", (Column("group_id", Kind.INT), Column("embedding", Kind.VECTOR, DIM)))


def write_files(folder: Path, count: int, seed: int = 0) -> tuple[list[Path], Path]:
    rng = np.random.default_rng(seed)
    small = []
    for i in range(count):
        path = folder / f"small-{i}.bin"
        path.write_bytes(rng.bytes(1 << 20))
        small.append(path)
    large = folder / "large.bin"
    large.write_bytes(rng.bytes(64 << 20))
    return small, large


def upload_rate(store, files: list[Path]) -> float:
    """MB/s to put every file (fresh bytes each time: nothing is skipped as already stored)."""
    started = time.perf_counter()
    for path in files:
        store.put_file(path, path.name, "application/octet-stream")
    return sum(p.stat().st_size for p in files) / (1 << 20) / (time.perf_counter() - started)


def vector_rows(count: int, seed: int = 0) -> list[dict]:
    vectors = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [{"row_key": f"v:{i:07d}", "group_id": i % 10, "embedding": vectors[i]} for i in range(count)]


def table_timings(lake, rows: list[dict], queries: np.ndarray) -> dict[str, float]:
    table = lake.table(VECTORS)
    started = time.perf_counter()
    for start in range(0, len(rows), 5000):
        table.replace_partition(f"p{start // 5000}", rows[start:start + 5000], "bench")
    rate = len(rows) / (time.perf_counter() - started)
    plain, filtered = [], []
    where = parse_filter("group_id = 3")
    for query in queries:
        for bucket, condition in ((plain, None), (filtered, where)):
            begin = time.perf_counter()
            table.search(VectorSearch("embedding", query, mode="vector", k=10, where=condition))
            bucket.append(time.perf_counter() - begin)
    return {"rows/s": rate, "search p50 ms": statistics.median(plain) * 1e3,
            "filtered p50 ms": statistics.median(filtered) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--files", type=int, default=32)
    args = parser.parse_args()
    rows = vector_rows(args.rows)
    queries = np.stack([r["embedding"] for r in rows[:30]])

    with tempfile.TemporaryDirectory() as scratch, moto_server() as endpoint, FilesApiServer() as files_api:
        scratch = Path(scratch)
        os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint})
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        stores = {
            "local": lambda run: LocalFileStore(scratch / f"files-{run}"),
            "object-storage (moto)": lambda run: S3FileStore(f"s3://bench/files-{run}"),
            "deeplake-pg /files (stand-in)": lambda run: HttpFileStore(
                files_api.base_url, files_api.workspace, files_api.token, files_api.org_id, scratch / f"index-{run}"),
        }
        print(f"{'upload':<32} {'1 MiB files MB/s':>17} {'64 MiB file MB/s':>17} {'ratio vs local':>15}")
        baseline = None
        for run, (name, make) in enumerate(stores.items()):
            folder = scratch / f"src-{run}"
            folder.mkdir()
            small, large = write_files(folder, args.files, seed=run)
            small_rate, large_rate = upload_rate(make(run), small), upload_rate(make(run), [large])
            baseline = baseline or (small_rate, large_rate)
            print(f"{name:<32} {small_rate:>17.1f} {large_rate:>17.1f} "
                  f"{small_rate / baseline[0]:>7.2f} /{large_rate / baseline[1]:>5.2f}")

        creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "endpoint_url": endpoint,
                 "aws_region": "us-east-1"}
        lakes = {"local": LocalDeepLake(scratch / "lake"),
                 "object-storage (moto)": ObjectStoreDeepLake("s3://bench/lake", scratch / "locks", creds)}
        print(f"\n{'tables, ' + str(args.rows) + ' x 384':<32} {'rows/s':>10} {'search p50 ms':>14} {'filtered p50 ms':>16} "
              f"{'ratios vs local (rows/s, p50, filtered)':>40}")
        base = None
        for name, lake in lakes.items():
            timing = table_timings(lake, rows, queries)
            base = base or timing
            ratios = " / ".join(f"{timing[key] / base[key]:.2f}" for key in ("rows/s", "search p50 ms", "filtered p50 ms"))
            print(f"{name:<32} {timing['rows/s']:>10.0f} {timing['search p50 ms']:>14.1f} "
                  f"{timing['filtered p50 ms']:>16.1f} {ratios:>40}")
        print(f"{'deeplake-pg':<32} not measurable here: no pg_deeplake server (SQL verified by golden tests only)")


if __name__ == "__main__":
    main()
