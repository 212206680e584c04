"""Writer processes for the concurrency tests: top-level functions, so `spawn` can start them.

Each waits on a shared barrier so the racing writes really start together, and reports what happened
(`ok` or the error's class and text) through a queue.
"""

from __future__ import annotations

import time

from dlk_assets.lake.batching import BatchPolicy, append_missing
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.schema import Column, Kind, TableSchema

EVENTS = TableSchema("events", (Column("text", Kind.TEXT), Column("n", Kind.INT)))


def gather_outcomes(processes: list, results, wait_s: float) -> dict[str, tuple[str, str]]:
    """Each started writer's (status, text) by name from the results queue; every writer must then exit cleanly."""
    outcomes = {}
    for _ in processes:
        name, status, text = results.get(timeout=wait_s)
        outcomes[name] = (status, text)
    for process in processes:
        process.join(timeout=wait_s / 3)
        assert process.exitcode == 0
    return outcomes


def event_rows(prefix: str, count: int, start: int = 0) -> list[dict]:
    """Rows keyed `<prefix>:<i>` whose values say who wrote them."""
    return [{"row_key": f"{prefix}:{i:05d}", "text": f"{prefix} wrote {i}", "n": i} for i in range(start, start + count)]


def _report(results, name: str, action) -> None:
    try:
        action()
        results.put((name, "ok", ""))
    except Exception as exc:  # noqa: BLE001 (the test asserts on what each writer saw)
        results.put((name, type(exc).__name__, str(exc)))


def replace_rows(root: str, partition: str, rows: list[dict], barrier, results) -> None:
    """Open the table, wait for the others, then replace `partition` with `rows`."""
    table = LocalDeepLake(root).table(EVENTS)
    barrier.wait()
    _report(results, partition, lambda: table.replace_partition(partition, rows, f"replace {partition}"))


def append_shard(root: str, name: str, partition: str, rows: list[dict], barrier, results) -> None:
    """Append the rows the partition misses, in small batches (what `swe_traces` does)."""
    table = LocalDeepLake(root).table(EVENTS)
    barrier.wait()
    _report(results, name, lambda: append_missing(table, partition, rows, f"append {name}", BatchPolicy(batch_size=7, max_batch_size=7)))


def create_table(root: str, name: str, barrier, results) -> None:
    """Open (and so create) the table at the same moment as the others."""
    barrier.wait()
    _report(results, name, lambda: LocalDeepLake(root).table(EVENTS))


def replace_forever(root: str, partition: str, ready) -> None:
    """Replace a partition with ever new rows until killed (the kill -9 victim)."""
    table = LocalDeepLake(root).table(EVENTS)
    ready.set()
    round_ = 0
    while True:
        round_ += 1
        table.replace_partition(partition, event_rows(f"round{round_}", 2000), f"round {round_}")


def timed_commits(root: str, partition: str, count: int) -> list[float]:
    """Seconds each of `count` small replaces takes in a fresh process."""
    table = LocalDeepLake(root).table(EVENTS)
    times = []
    for i in range(count):
        started = time.perf_counter()
        table.replace_partition(partition, event_rows(f"after{i}", 3), f"after kill {i}")
        times.append(time.perf_counter() - started)
    return times
