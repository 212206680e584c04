"""Rows derived from another table of the lake, partition by partition (COCO image rows, agent memory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from dlk_assets.defs.pipeline.run_context import dagster_run_id, partition_metadata
from dlk_assets.defs.pipeline.table_metadata import table_metadata
from dlk_assets.lake.schema import TableSchema
from dlk_assets.lake.tables import Lake


def replace_derived_partitions(context: dg.AssetExecutionContext, lake: Lake, source: TableSchema, target: TableSchema,
                               build: Callable[[dict[str, Any], str], dict[str, Any]],
                               describe: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> dg.MaterializeResult:
    """Rebuild `target`'s rows for every partition of the run from `source`'s (one run can take a range).

    `build(source_row, dagster_run_id)` makes one row; `describe(rows)` gives a partition's metadata.
    The data version is Dagster's own (code version and the source partition's version, which is
    content-derived), so a rebuild over unchanged input marks nothing stale.
    """
    run_id = dagster_run_id(context)
    table = lake.table(target)
    per_partition = {}
    for key in context.partition_keys:
        rows = [build(row, run_id) for row in lake.table(source).read_partition(key)]
        table.replace_partition(key, rows, f"{target.name} {key} run {run_id}")
        per_partition[key] = {"dagster/partition_row_count": len(rows), "rows": len(rows), **describe(rows)}
    return dg.MaterializeResult(metadata={**table_metadata(table), "partitions": len(per_partition),
                                          **partition_metadata(context, per_partition)})
