"""The cutover (active -> target, only through the gate) and the explicit cleanup of retired models' tables."""


import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from dlk_assets.defs.gpu import GPU_STEP
from dlk_assets.defs.pipeline.automation import CUTOVER_CONDITION
from dlk_assets.defs.pipeline.index import gate_metadata
from dlk_assets.defs.pipeline.readiness import evaluate_gate
from dlk_assets.defs.pipeline.run_context import dagster_run_id
from dlk_assets.defs.pipeline.serving import (
    embeddings_table,
    model_tables,
    served_table_name,
)
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.models.active import ActiveModel, write_active
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.resources import dagster_home


def slices_pinning(tables: set[str], slices_root: Path) -> dict[str, str]:
    """Exported slices whose manifest pins one of `tables` (they can no longer be rebuilt once it is gone)."""
    pinned = {}
    for manifest in sorted(slices_root.glob("*/manifest.json")) if slices_root.is_dir() else []:
        table = json.loads(manifest.read_text()).get("table")
        if table in tables:
            pinned[manifest.parent.name] = table
    return pinned


def build_cutover(spec: SourceSpec, registry: ModelRegistry, index: dg.AssetsDefinition
                  ) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """`<prefix>_active_model` (the cutover) and `<prefix>_retired_models` (the cleanup)."""
    target = registry.target(spec)

    @dg.asset(
        name=spec.asset_name("active_model"), deps=[index], group_name=spec.group, kinds={"deeplake"}, **GPU_STEP,
        code_version=target.fingerprint, automation_condition=CUTOVER_CONDITION, required_resource_keys={"lake", "models"},
        description=f"Which encoder serves {spec.name} (searches, slices, the API). Switches to the target only when the "
                    "cutover gate passes; otherwise the run fails and nothing changes.",
    )
    def active_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        registry_now: ModelRegistry = context.resources.models.registry()
        lake = context.resources.lake.lake()
        evaluation = evaluate_gate(spec, lake, registry_now)
        metadata = gate_metadata(evaluation)
        if not evaluation.decision.passed:
            raise dg.Failure(description=f"{spec.name} cutover refused: {evaluation.decision.reason}", metadata=metadata)
        new = evaluation.target
        previous = registry_now.active_record(spec, lake)
        table = embeddings_table(spec, lake, new)
        if previous and previous.encoder_fingerprint == new.fingerprint:
            context.log.info(f"{spec.name}: {new.name} already serves")
            switched = False
        else:
            write_active(lake, ActiveModel(
                spec.name, new.name, new.fingerprint, table.schema.name, table.version,
                {k: v for k, v in metadata.items() if not isinstance(v, dg.MetadataValue)},
                datetime.now(UTC).isoformat(timespec="seconds"), dagster_run_id(context)))
            context.log.info(f"{spec.name}: cut over from {previous.encoder if previous else 'nothing'} to {new.name}")
            switched = True
        return dg.MaterializeResult(metadata={
            **metadata, "active": new.name, "active_fingerprint": new.fingerprint, "switched_now": switched,
            "previous": previous.encoder if previous else "none", "served_table": table.schema.name,
            "served_table_version": table.version,
        }, data_version=dg.DataVersion(f"{new.fingerprint}@{table.version}"))

    @dg.asset(
        name=spec.asset_name("retired_models"), deps=[active_model], group_name=spec.group, kinds={"deeplake"},
        required_resource_keys={"lake", "models"},
        description=f"Removes {spec.name}'s per-model tables of encoders that neither serve nor are the target. "
                    "Never automatic: materialize it (or `dlk cleanup`) once the old model is no longer needed.",
    )
    def retired_models(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        registry_now: ModelRegistry = context.resources.models.registry()
        lake = context.resources.lake.lake()
        keep = {served_table_name(spec, lake, registry_now), spec.embeddings_table_name(registry_now.target(spec).fingerprint)}
        retired = [name for name in model_tables(spec, lake) if name not in keep]
        pinned = slices_pinning(set(retired), dagster_home() / "slices")
        for name in retired:
            lake.drop(name)
            context.log.info(f"{spec.name}: removed {name}")
        return dg.MaterializeResult(metadata={
            "removed": dg.MetadataValue.json(retired), "kept": dg.MetadataValue.json(sorted(keep)),
            "slices_pinning_removed_tables": dg.MetadataValue.json(pinned),
        })

    return active_model, retired_models
