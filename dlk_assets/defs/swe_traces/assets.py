"""SWE-trace assets: the append-only trace table, agent memory, its embeddings, and the memory indexes."""


import time

import dagster as dg

from dlk_assets.defs.gpu import GPU_OP_TAGS, GPU_POOL
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.defs.swe_traces.rows import memory_embedding_row, memory_row, trace_row
from dlk_assets.defs.swe_traces.search import MODES, memory_hits_markdown, search_memory
from dlk_assets.defs.swe_traces.tables import (
    SWE_MEMORY,
    SWE_TRACES,
    memory_embeddings_schema,
)
from dlk_assets.lake.batching import BatchPolicy, append_missing
from dlk_assets.profile import configured_text_encoder_fingerprint
from dlk_assets.resources import (
    LakeResource,
    SweTraceSourceResource,
    TextEncoderResource,
)
from dlk_assets.sources.shards import shard_index

INDEX_PREVIEW_QUERY = "fix authentication bug"


@dg.asset(
    partitions_def=swe_shards,
    group_name="swe_traces",
    kinds={"deeplake", "huggingface"},
    code_version="1",
)
def swe_traces(context: dg.AssetExecutionContext, swe_source: SweTraceSourceResource, lake: LakeResource) -> dg.MaterializeResult:
    """The durable, append-only trace table (conversations as JSON). A re-run writes only the traces the
    shard is missing; writes go in batches that halve and back off on transient failures, then grow back."""
    started = time.perf_counter()
    stream = swe_source.stream()
    shard = stream.read_shard(shard_index(context.partition_key), swe_source.shard_size, swe_source.on_bad_record)
    rows, duplicates = {}, 0
    for record in shard.records:
        if record.row_key in rows:  # the same trace twice in the source: keep the first
            duplicates += 1
            continue
        rows[record.row_key] = trace_row(record, stream.label, context.run_id)
    for skipped in shard.skipped:
        context.log.warning(f"{context.partition_key}: skipped {skipped.item}: {skipped.reason}")
    table = lake.lake().table(SWE_TRACES)
    policy = BatchPolicy(batch_size=swe_source.insert_batch_size, max_batch_size=swe_source.max_insert_batch_size)
    report = append_missing(table, context.partition_key, list(rows.values()), f"swe_traces {context.partition_key} run {context.run_id}",
                            policy, log=context.log.warning)
    context.log.info(f"{context.partition_key}: {report.written} trace(s) written, {report.already_present} already present, "
                     f"{report.retries} retr{'y' if report.retries == 1 else 'ies'}")
    return dg.MaterializeResult(metadata={
        "traces_in_shard": len(rows), "written": report.written, "already_present": report.already_present,
        "skipped": len(shard.skipped), "duplicates_in_source": duplicates, "batches": report.batches,
        "retries": report.retries, "batch_sizes": dg.MetadataValue.json(report.batch_sizes),
        "table_rows": len(table), "table_version": table.version, "source": stream.label,
        "seconds": round(time.perf_counter() - started, 3),
    })


@dg.asset(
    partitions_def=swe_shards,
    deps=[swe_traces],
    group_name="swe_traces",
    kinds={"deeplake"},
    code_version="1",
)
def swe_memory(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Agent memory derived from the traces: task, outcome, errors seen, commands run and a compact summary."""
    tables = lake.lake()
    traces = tables.table(SWE_TRACES).read_partition(context.partition_key)
    rows = [memory_row(trace, context.run_id) for trace in traces]
    write = tables.table(SWE_MEMORY).replace_partition(context.partition_key, rows, f"swe_memory {context.partition_key} run {context.run_id}")
    outcomes = {o: sum(r["outcome"] == o for r in rows) for o in ("resolved", "failed", "unknown")}
    return dg.MaterializeResult(metadata={
        "rows": len(rows), **{f"outcome_{o}": n for o, n in outcomes.items()}, "rows_replaced": write.rows_replaced,
        "table_version": write.version,
    })


@dg.asset(
    partitions_def=swe_shards,
    deps=[swe_memory],
    group_name="swe_traces",
    kinds={"deeplake", "pytorch"},
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    code_version=configured_text_encoder_fingerprint(),
)
def swe_memory_embeddings(context: dg.AssetExecutionContext, lake: LakeResource, text_encoder: TextEncoderResource) -> dg.MaterializeResult:
    """The memory rows with a MiniLM embedding of the task text. Says `cached` when the same tasks already
    have vectors from the same encoder."""
    encoder = text_encoder.encoder()
    tables = lake.lake()
    memory = tables.table(SWE_MEMORY).read_partition(context.partition_key)
    table = tables.table(memory_embeddings_schema(encoder))
    existing = table.read_partition(context.partition_key, ("task", "summary", "model_fingerprint"))
    wanted = {(r["row_key"], r["task"], r["summary"], encoder.fingerprint) for r in memory}
    if memory and wanted == {(r["row_key"], r["task"], r["summary"], r["model_fingerprint"]) for r in existing}:
        context.log.info(f"{context.partition_key}: {len(memory)} memory embeddings already current for {encoder.fingerprint}")
        return dg.MaterializeResult(metadata={"cached": True, "rows": len(memory), "model": encoder.fingerprint, "table": table.schema.name})
    started = time.perf_counter()
    vectors = encoder.encode_pooled([r["task"] for r in memory])
    encode_seconds = time.perf_counter() - started
    rows = [memory_embedding_row(r, v, encoder.fingerprint, context.run_id) for r, v in zip(memory, vectors)]
    write = table.replace_partition(context.partition_key, rows, f"memory embeddings {context.partition_key} {encoder.fingerprint} run {context.run_id}")
    return dg.MaterializeResult(metadata={
        "cached": False, "rows": len(rows), "model": encoder.fingerprint, "dim": encoder.dim, "device": encoder.device,
        "table": table.schema.name, "table_version": write.version, "encode_seconds": round(encode_seconds, 3),
        "texts_per_second": round(len(rows) / encode_seconds, 1) if rows and encode_seconds else 0.0,
    })


@dg.asset(
    deps=[swe_memory_embeddings],
    group_name="swe_traces",
    kinds={"deeplake"},
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
)
def memory_index(context: dg.AssetExecutionContext, lake: LakeResource, text_encoder: TextEncoderResource) -> dg.MaterializeResult:
    """A clustered vector index on the task embedding, BM25 on `task` (and on `errors`, for similar failures),
    with a preview search in each mode in the metadata."""
    encoder = text_encoder.encoder()
    table = lake.lake().table(memory_embeddings_schema(encoder))
    created = {column: table.create_index(column, kind) for column, kind in
               (("embedding", "clustered"), ("task", "bm25"), ("errors", "bm25"))}
    context.log.info(f"indexes on {table.schema.name}: {table.indexes()}")
    previews = {mode: search_memory(table, encoder, INDEX_PREVIEW_QUERY, mode, 5) for mode in MODES}
    return dg.MaterializeResult(metadata={
        "table": table.schema.name, "rows": len(table), "shards": len(table.partition_counts()),
        "indexes": dg.MetadataValue.json(table.indexes()), "created_now": dg.MetadataValue.json(created),
        "table_version": table.version, "model": encoder.fingerprint, "preview_query": INDEX_PREVIEW_QUERY,
        **{f"top_hits_{mode}": dg.MetadataValue.md(memory_hits_markdown(hits)) for mode, hits in previews.items()},
        "modes": dg.MetadataValue.md(markdown_table(("mode", "how"), [
            ("bm25", "exact words on task (stop words dropped)"), ("vector", "MiniLM cosine, over-fetch + exact re-rank"),
            ("hybrid", "weighted reciprocal rank fusion of both, RRF_K=60")])),
    })


swe_shard_job = dg.define_asset_job(
    "swe_shard_job",
    selection=dg.AssetSelection.assets(swe_traces, swe_memory, swe_memory_embeddings),
    partitions_def=swe_shards,
    description="Ingest one SWE-trace shard: traces (append-only), memory and embeddings.",
)
