"""SWE-trace ingest assets: the append-only trace table and the agent memory derived from it (embeddings,
indexes, cutover follow from `spec`)."""

import time

import dagster as dg

from dlk_assets.defs.pipeline.automation import FOLLOW_UPSTREAM
from dlk_assets.defs.pipeline.derived_rows import replace_derived_partitions
from dlk_assets.defs.pipeline.ingest_safety import (
    skip_claimed_elsewhere,
    skipped_metadata,
)
from dlk_assets.defs.pipeline.run_context import dagster_run_id
from dlk_assets.defs.pipeline.table_metadata import definition_metadata, table_metadata
from dlk_assets.defs.pipeline.versions import rows_version
from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.defs.swe_traces.rows import memory_row, trace_row
from dlk_assets.defs.swe_traces.tables import SWE_MEMORY, SWE_TRACES
from dlk_assets.lake.batching import BatchPolicy, append_missing
from dlk_assets.resources import LakeResource, SweTraceSourceResource
from dlk_assets.sources.shards import shard_index


@dg.asset(
    partitions_def=swe_shards,
    group_name="swe_traces",
    kinds={"deeplake", "huggingface"},
    code_version="2",
    metadata=definition_metadata(SWE_TRACES),
)
def swe_traces(context: dg.AssetExecutionContext, swe_source: SweTraceSourceResource, lake: LakeResource) -> dg.MaterializeResult:
    """The durable, append-only trace table (conversations as JSON). A trace seen twice keeps its first copy
    (in this shard or another); a re-run writes only the traces the shard is missing; writes go in batches that halve and back off on transient failures, then grow back.
    The data version is the shard's traces as read, so an unchanged source marks nothing stale."""
    started = time.perf_counter()
    run_id = dagster_run_id(context)
    stream = swe_source.stream()
    shard = stream.read_shard(shard_index(context.partition_key), swe_source.shard_size, swe_source.on_bad_record)
    table = lake.lake().table(SWE_TRACES)
    records, claimed = skip_claimed_elsewhere(table, context.partition_key, shard.records, lambda r: r.row_key,
                                              lambda r: (r.position, f"run_id {r.run_id}"))
    skipped = [*shard.skipped, *claimed]
    rows = [trace_row(record, stream.label, run_id) for record in records]
    for item in skipped:
        context.log.warning(f"{context.partition_key}: skipped {item.item}: {item.reason}")
    policy = BatchPolicy(batch_size=swe_source.insert_batch_size, max_batch_size=swe_source.max_insert_batch_size)
    report = append_missing(table, context.partition_key, rows, f"swe_traces {context.partition_key} run {run_id}",
                            policy, log=context.log.warning)
    context.log.info(f"{context.partition_key}: {report.written} trace(s) written, {report.already_present} already present, "
                     f"{report.retries} retr{'y' if report.retries == 1 else 'ies'}")
    return dg.MaterializeResult(metadata={
        **table_metadata(table, len(rows)), "traces_in_shard": len(rows), "written": report.written,
        "already_present": report.already_present, **skipped_metadata(skipped),
        "batches": report.batches, "retries": report.retries, "batch_sizes": dg.MetadataValue.json(report.batch_sizes),
        "source": stream.label, "seconds": round(time.perf_counter() - started, 3),
    }, data_version=rows_version(rows))


@dg.asset(
    partitions_def=swe_shards,
    deps=[swe_traces],
    group_name="swe_traces",
    kinds={"deeplake"},
    code_version="2",
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=FOLLOW_UPSTREAM,
    metadata=definition_metadata(SWE_MEMORY),
)
def swe_memory(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Agent memory derived from the traces: task, outcome, errors seen, commands run and a compact summary.
    Reads only the lake, so one run handles a whole partition range in a backfill."""
    return replace_derived_partitions(context, lake.lake(), SWE_TRACES, SWE_MEMORY, memory_row, lambda rows: {
        f"outcome_{o}": sum(r["outcome"] == o for r in rows) for o in ("resolved", "failed", "unknown")})
