"""Time to read shard i, and to discover every shard, as the source grows: flat in i, not quadratic.

A generated SWE-trace dataset in Hugging Face hub layout (`data/train-NNNNN-of-MMMMM.parquet`, 240
files of 40 rows in row groups of 20 by default) is read two ways in the same run:
- `project`: `SweTraceStream.read_shard(i)` as a partition run does it — a new source object per
  read (every Dagster run is a new process) with the footer cache warm, so it resolves the files,
  takes row counts from the cache and reads only the row groups holding shard i;
- `streaming` (the earlier reader, the baseline): `load_dataset(..., streaming=True).skip(start).take(n)`.

Prints, per shard index, each path's read time divided by its own time for shard 0 (flat means
about 1 everywhere), the project/streaming ratio at each index, and discovery: the project's
`positions()` over every file vs the earlier `has_shard` probe of the last shard alone (the old
sensor ran one such probe per shard, so discovering all shards was quadratic).
Usage: python benchmarks/bench_shard_reads.py [--files 240] [--rows-per-file 40] [--shard-size 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import load_dataset

from dlk_assets.sources.hub_layout import write_hub_layout
from dlk_assets.sources.swe_sample import bundled_sample_path
from dlk_assets.sources.swe_traces import SweTraceStream


def generated_traces(rows: int) -> pa.Table:
    """`rows` traces with distinct run ids, cycling through the bundled sample's rows."""
    sample = pq.read_table(bundled_sample_path())
    copies = -(-rows // sample.num_rows)
    table = pa.concat_tables([sample] * copies).slice(0, rows)
    run_ids = [f"{run_id}-{n}" for n, run_id in enumerate(table.column("run_id").to_pylist())]
    return table.set_column(table.schema.get_field_index("run_id"), "run_id", pa.array(run_ids, pa.string()))


def median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def project_read(folder: Path, cache: Path, index: int, shard_size: int) -> int:
    shard = SweTraceStream(str(folder), footer_cache=str(cache)).read_shard(index, shard_size)
    return len(shard.records)


def streaming_read(folder: Path, index: int, shard_size: int) -> int:
    stream = load_dataset(str(folder), split="train", streaming=True)
    return sum(1 for _ in stream.skip(index * shard_size).take(shard_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=240)
    parser.add_argument("--rows-per-file", type=int, default=40)
    parser.add_argument("--row-group-size", type=int, default=20)
    parser.add_argument("--shard-size", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder, cache = Path(scratch) / "repo", Path(scratch) / "footers.json"
        total = args.files * args.rows_per_file
        write_hub_layout(generated_traces(total), folder, [args.rows_per_file] * args.files,
                         row_group_size=args.row_group_size)
        shards = -(-total // args.shard_size)
        cold = median_seconds(lambda: SweTraceStream(str(folder), footer_cache=str(cache)).positions(), 1)
        print(f"{args.files} files x {args.rows_per_file} rows (row groups of {args.row_group_size}), "
              f"{shards} shards of {args.shard_size}; first layout build (reads every footer): {cold * 1000:.0f} ms")

        indexes = sorted({0, shards // 4, shards // 2, 3 * shards // 4, shards - 1})
        project, streaming = {}, {}
        for index in indexes:
            assert project_read(folder, cache, index, args.shard_size) == streaming_read(folder, index, args.shard_size)
            project[index] = median_seconds(lambda i=index: project_read(folder, cache, i, args.shard_size), args.repeats)
            streaming[index] = median_seconds(lambda i=index: streaming_read(folder, i, args.shard_size), max(args.repeats // 2, 1))

        print(f"{'shard':>6} {'project ms':>11} {'vs shard 0':>11} {'streaming ms':>13} {'vs shard 0':>11} {'project/streaming':>18}")
        for index in indexes:
            print(f"{index:>6} {project[index] * 1000:>11.1f} {project[index] / project[indexes[0]]:>11.2f} "
                  f"{streaming[index] * 1000:>13.1f} {streaming[index] / streaming[indexes[0]]:>11.2f} "
                  f"{project[index] / streaming[index]:>18.3f}")
        last = indexes[-1]
        print(f"flatness (last / first shard): project {project[last] / project[indexes[0]]:.2f}, "
              f"streaming {streaming[last] / streaming[indexes[0]]:.2f}")

        discover = median_seconds(lambda: SweTraceStream(str(folder), footer_cache=str(cache)).positions(), args.repeats)
        probe_last = median_seconds(lambda: streaming_read(folder, shards - 1, 1), max(args.repeats // 2, 1))
        print(f"discovery of all {shards} shards: project {discover * 1000:.1f} ms; the earlier sensor probed each "
              f"shard by streaming to it — the last probe alone took {probe_last * 1000:.1f} ms "
              f"(project / last probe: {discover / probe_last:.3f})")


if __name__ == "__main__":
    main()
