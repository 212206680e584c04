"""What an asset needs from its run: the run id for every row's lineage, and per-partition metadata."""

from typing import Any

import dagster as dg

# An asset called directly (Dagster's unit-test mode) has no run; its rows say so instead of a run id.
DIRECT_INVOCATION = "direct-invocation"


def dagster_run_id(context: dg.AssetExecutionContext) -> str:
    """`context.run.run_id`, or `direct-invocation` when the asset was called without a run."""
    try:
        return context.run.run_id
    except dg.DagsterError:  # only raised here when the context has no run (DagsterInvalidPropertyError)
        return DIRECT_INVOCATION


def partition_metadata(context: dg.AssetExecutionContext, per_partition: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Metadata per partition: returned for the result when the run has one partition, else attached to
    each partition's materialization (a backfill run over a range)."""
    if len(per_partition) == 1:
        return next(iter(per_partition.values()))
    for key, metadata in per_partition.items():
        context.add_asset_metadata(metadata, partition_key=key)
    return {}
