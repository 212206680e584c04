"""The embeddings asset of a source, and the check that every partition is on the target encoder."""


import time
from typing import Any

import dagster as dg

from dlk_assets.defs.gpu import GPU_STEP
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.pipeline.automation import (
    COVERAGE_CHECK_CONDITION,
    FOLLOW_UPSTREAM,
)
from dlk_assets.defs.pipeline.embedding_work import (
    EmbedTimer,
    embed_rows,
    embedding_rows,
    plan_partition,
    writing_encoders,
)
from dlk_assets.defs.pipeline.progress import Progress
from dlk_assets.defs.pipeline.readiness import coverage
from dlk_assets.defs.pipeline.run_context import dagster_run_id, partition_metadata
from dlk_assets.defs.pipeline.serving import model_names
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.pipeline.table_metadata import definition_metadata, table_metadata
from dlk_assets.encoders.base import Encoder
from dlk_assets.models.coverage import Coverage, estimate_backfill, format_duration
from dlk_assets.models.registry import ModelRegistry

# Partitions per run in a backfill: the model loads once per run, and a run that fails costs little.
EMBED_PARTITIONS_PER_RUN = 8
CALIBRATION_ITEMS = 8


def _resource_keys(spec: SourceSpec) -> set[str]:
    extra = {spec.embedder.settings_resource} if spec.embedder.settings_resource else set()
    return {"lake", "files", "models", *extra}


def _settings(spec: SourceSpec, resources: Any) -> dict[str, Any]:
    if not spec.embedder.settings_resource:
        return {}
    return spec.embedder.settings(getattr(resources, spec.embedder.settings_resource))


def _schema_metadata(spec: SourceSpec, target: Encoder) -> dict[str, Any]:
    try:
        return definition_metadata(spec.embeddings_schema(target))
    except Exception:  # noqa: BLE001 (an encoder whose size needs its weights, e.g. ColQwen3 not downloaded here)
        return {"dagster/table_name": spec.embeddings_table_name(target.fingerprint)}


def materialize_embeddings(spec: SourceSpec, context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Embed each partition of the run for the target (and first for the active model while it differs).

    The data version is Dagster's own (the target's fingerprint and the rows' versions), so a model
    change or changed rows mark downstream stale and a cached re-run does not.
    """
    resources = context.resources
    registry: ModelRegistry = resources.models.registry()
    lake, store = resources.lake.lake(), resources.files.store()
    settings = _settings(spec, resources)
    rows_table = lake.table(spec.rows_table)
    encoders = writing_encoders(spec, registry, lake)
    target = encoders[-1]
    work = [plan_partition(spec, lake, key, rows_table.read_partition(key), encoder, settings)
            for key in context.partition_keys for encoder in encoders]
    pending = [w for w in work if not w.current]
    load_seconds = _load([w for w in pending if w.to_embed], context.log.info)
    progress = Progress(sum(len(w.to_embed) for w in pending), spec.embedder.unit, context.log.info)
    timer = EmbedTimer()
    context.log.info(f"{spec.name}: {len(pending)} of {len(work)} (partition, encoder) pair(s) to embed, "
                     f"{progress.total} {spec.embedder.unit}; target {target.name} on {target.device}")
    per_partition, previews = {}, []
    for item in work:
        label = f"{item.partition} [{item.encoder.name}]"
        if item.current:
            context.log.info(f"{label}: {len(item.rows)} {spec.embedder.unit} already embedded (cached)")
        else:
            fresh = item.to_embed
            values = embed_rows(spec, fresh, item.encoder, store, settings, label,
                                lambda n, label=label: progress.advance(n, label), timer)
            if item.kept:
                carried = f" ({len(item.carried)} carried over by same {', '.join(spec.embedded_columns)})" if item.carried else ""
                context.log.info(f"{label}: {item.kept} {spec.embedder.unit} unchanged, vectors kept{carried}; "
                                 f"{len(fresh)} embedded")
            written = [*item.reused_rows(), *embedding_rows(spec, fresh, values, item.encoder, settings, dagster_run_id(context))]
            item.table.replace_partition(item.partition, written, f"{spec.embeddings_asset} {item.partition} "
                                         f"{item.encoder.fingerprint} run {dagster_run_id(context)}")
            if spec.embedder.preview and item.encoder is target:
                previews.append(spec.embedder.preview(written))
        if item.encoder is target:
            per_partition[item.partition] = {"dagster/partition_row_count": len(item.rows), "rows": len(item.rows),
                                              "cached": item.current, "embedded": 0 if item.current else len(item.to_embed),
                                              "reused": item.kept}
    throughput = {fp: round(rate, 3) for fp in timer.items if (rate := timer.rate(fp))}
    metadata: dict[str, Any] = {
        **table_metadata(next(w.table for w in work if w.encoder is target)),
        "encoder": target.name, "encoder_fingerprint": target.fingerprint, "device": target.device,
        "partitions": len(context.partition_keys), "items_embedded": progress.done,
        "also_written": ", ".join(e.name for e in encoders[:-1]) or "none",
        "throughput": dg.MetadataValue.json(throughput), "load_seconds": dg.MetadataValue.json(load_seconds),
        "items_per_second": throughput.get(target.fingerprint, 0.0), **partition_metadata(context, per_partition),
    }
    if previews:
        metadata["preview"] = dg.MetadataValue.md("\n\n".join(previews))
    return dg.MaterializeResult(metadata=metadata)


def _load(pending, log) -> dict[str, float]:
    """Load each encoder with work before timing anything, so throughput measures encoding only."""
    load_seconds = {}
    for encoder in {w.encoder.fingerprint: w.encoder for w in pending}.values():
        started = time.perf_counter()
        encoder.load()
        load_seconds[encoder.fingerprint] = round(time.perf_counter() - started, 3)
        log(f"{encoder.name}: loaded on {encoder.device} in {load_seconds[encoder.fingerprint]:.1f} s")
    return load_seconds


def measured_speed(instance: dg.DagsterInstance, asset_key: dg.AssetKey, fingerprint: str,
                   limit: int = 200) -> tuple[float, float] | None:
    """(items/s, load seconds) of the encoder from the latest embedding run that measured it here."""
    for record in instance.fetch_materializations(asset_key, limit=limit).records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization else {}
        rate = (metadata["throughput"].value or {}).get(fingerprint) if "throughput" in metadata else None
        if rate:
            load = (metadata["load_seconds"].value or {}).get(fingerprint, 0.0) if "load_seconds" in metadata else 0.0
            return float(rate), float(load)
    return None


def calibrate(spec: SourceSpec, lake, store, encoder: Encoder, settings: dict[str, Any], covered: Coverage,
              log) -> tuple[float | None, float]:
    """Measure the encoder's items/s on a few rows still to embed (nothing is written), and its load time."""
    partition = next(iter(covered.behind), None)
    rows = lake.table(spec.rows_table).read_partition(partition)[:CALIBRATION_ITEMS] if partition else []
    if not rows:
        return None, 0.0
    started = time.perf_counter()
    encoder.load()
    loaded = time.perf_counter() - started
    timer = EmbedTimer()
    embed_rows(spec, rows, encoder, store, settings, f"calibration {partition}", timer=timer)
    rate = timer.rate(encoder.fingerprint)
    log(f"calibrated {encoder.name}: loads in {loaded:.1f} s, {len(rows)} {spec.embedder.unit} at {rate or 0:.2f}/s")
    return rate, loaded


def coverage_markdown(covered: Coverage, names: dict[str, str]) -> str:
    """The partitions the target lacks and the models that have them."""
    rows = [(partition, covered.rows[partition], ", ".join(names.get(t, t) for t in tables) or "none yet")
            for partition, tables in covered.behind.items()]
    return markdown_table(("partition", "rows", "embedded by"), rows[:200])


def build_embeddings(spec: SourceSpec, registry: ModelRegistry) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """The source's embeddings asset (code version = the target's fingerprint) and its coverage check."""
    target = registry.target(spec)

    @dg.asset(
        name=spec.embeddings_asset, partitions_def=spec.partitions, deps=[spec.rows_asset], group_name=spec.group,
        kinds={"deeplake", "pytorch"}, **GPU_STEP, code_version=target.fingerprint,
        backfill_policy=dg.BackfillPolicy.multi_run(EMBED_PARTITIONS_PER_RUN), automation_condition=FOLLOW_UPSTREAM,
        required_resource_keys=_resource_keys(spec),
        description=spec.embeddings_description, metadata=_schema_metadata(spec, target),
    )
    def embeddings(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return materialize_embeddings(spec, context)

    @dg.asset_check(
        asset=embeddings, name=spec.asset_name("embedded_by_target"), blocking=False, **GPU_STEP,
        automation_condition=COVERAGE_CHECK_CONDITION, required_resource_keys=_resource_keys(spec),
        description="Every partition is embedded by the target encoder (row counts per partition in each model's table; "
                    "rows whose inputs changed are re-embedded by the asset itself, which compares them). Lists the "
                    "partitions still on another model (or none) and estimates the backfill: items, the target's "
                    "measured items/s, duration.",
    )
    def embedded_by_target(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resources = context.resources
        registry_now: ModelRegistry = resources.models.registry()
        lake, store = resources.lake.lake(), resources.files.store()
        target_now = registry_now.target(spec)
        covered = coverage(spec, lake, target_now)
        speed = measured_speed(context.instance, embeddings.key, target_now.fingerprint)
        measured = "measured by an earlier embedding run"
        if speed is None and covered.items_to_embed:
            measured = f"calibrated now on up to {CALIBRATION_ITEMS} {spec.embedder.unit}"
            try:
                speed = calibrate(spec, lake, store, target_now, _settings(spec, resources), covered, context.log.info)
            except Exception as exc:  # noqa: BLE001 (the stale partitions must still be listed: weights missing, ...)
                measured = f"calibration failed: {type(exc).__name__}: {exc}"
                context.log.warning(f"{target_now.name}: {measured}")
        estimate = estimate_backfill(covered, EMBED_PARTITIONS_PER_RUN, speed, measured)
        names = model_names(spec, registry_now)
        cost = {"target_encoder": target_now.name, "target_fingerprint": target_now.fingerprint, **estimate.metadata()}
        # The estimate also goes on the asset itself, where a person deciding on a backfill looks first.
        context.op_execution_context.log_event(dg.AssetObservation(asset_key=embeddings.key, metadata={
            f"backfill_estimate/{k}": v for k, v in cost.items()}))
        return dg.AssetCheckResult(
            passed=covered.complete, severity=dg.AssetCheckSeverity.ERROR,
            description=None if covered.complete else
            f"{estimate.partitions} partition(s) not on {target_now.name}: backfill {estimate.items} {spec.embedder.unit} "
            f"(about {format_duration(estimate.seconds)})",
            metadata={**cost, "partitions": len(covered.rows), "partitions_current": len(covered.current),
                      "stale_partitions": dg.MetadataValue.md(coverage_markdown(covered, names)) if covered.behind else "none"},
        )

    return embeddings, embedded_by_target
