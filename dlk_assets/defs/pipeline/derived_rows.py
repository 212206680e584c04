"""Rows derived from another table of the lake, partition by partition (COCO image rows, agent memory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from dlk_assets.defs.pipeline.run_context import dagster_run_id, partition_metadata
from dlk_assets.defs.pipeline.table_metadata import table_metadata
from dlk_assets.defs.pipeline.versions import partitions_version, rows_version
from dlk_assets.lake.schema import TableSchema
from dlk_assets.lake.tables import Lake


def replace_derived_partitions(context: dg.AssetExecutionContext, lake: Lake, source: TableSchema, target: TableSchema,
                               build: Callable[[dict[str, Any], str], dict[str, Any]],
                               describe: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> dg.MaterializeResult:
    """Rebuild `target`'s rows for every partition of the run from `source`'s (one run can take a range).

    `build(source_row, dagster_run_id)` makes one row; `describe(rows)` gives a partition's metadata.
    The data version is the rows' content, so a rebuild that changes nothing marks nothing stale.
    """
    run_id = dagster_run_id(context)
    table = lake.table(target)
    versions, per_partition, written = {}, {}, 0
    for key in context.partition_keys:
        rows = [build(row, run_id) for row in lake.table(source).read_partition(key)]
        table.replace_partition(key, rows, f"{target.name} {key} run {run_id}")
        versions[key] = rows_version(rows)
        per_partition[key] = {"rows": len(rows), **describe(rows)}
        written += len(rows)
    return dg.MaterializeResult(metadata={**table_metadata(table, written), "partitions": len(versions),
                                          **partition_metadata(context, per_partition)},
                                data_version=partitions_version(versions))
