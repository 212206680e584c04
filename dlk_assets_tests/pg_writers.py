"""Writer processes for the Deep Lake PG lock tests: top-level functions, so `spawn` can start them.

Each opens its own `DeepLakePg` (its own pool, as a Dagster run process would), writes once and reports
what happened (`ok` or the error's class and text) through a queue. The tests hold the table's advisory
lock while the writers start, so both are already waiting on it when it is released.
"""

from __future__ import annotations

from dlk_assets.lake.deeplake_pg import DeepLakePg
from dlk_assets.lake.schema import Column, Kind, TableSchema

EVENTS = TableSchema("events", (Column("text", Kind.TEXT), Column("n", Kind.INT)))


def event_rows(prefix: str, count: int) -> list[dict]:
    """Rows keyed `<prefix>:<i>` whose values say who wrote them."""
    return [{"row_key": f"{prefix}:{i:05d}", "text": f"{prefix} wrote {i}", "n": i} for i in range(count)]


def replace_rows(conninfo: str, workspace: str, name: str, partition: str, rows: list[dict], results) -> None:
    """Open (creating it if needed) the table, then replace `partition` with `rows`."""
    lake = DeepLakePg(conninfo, workspace, access_method="heap", visibility_timeout_s=5.0)
    try:
        lake.table(EVENTS).replace_partition(partition, rows, f"replace {partition} by {name}")
        results.put((name, "ok", ""))
    except Exception as exc:  # noqa: BLE001 (the test asserts on what each writer saw)
        results.put((name, type(exc).__name__, str(exc)))
    finally:
        lake.close()
