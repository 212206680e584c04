"""`dlk models`: the encoders, and per source which one serves, which one is the target, and their coverage."""

from __future__ import annotations

import dagster as dg

from dlk_assets.defs.pipeline.readiness import coverage
from dlk_assets.defs.pipeline.serving import model_names
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.lake.tables import Lake
from dlk_assets.models.catalog import CATALOG
from dlk_assets.models.registry import ModelRegistry


def _encoder_line(name: str, registry: ModelRegistry) -> str:
    entry = CATALOG[name]
    try:
        encoder = registry.encoder(name)
        outputs = ", ".join(sorted(o.value for o in encoder.outputs))
        fingerprint = encoder.fingerprint
    except Exception as exc:  # noqa: BLE001 (shown, not raised: the list must still print)
        outputs, fingerprint = "-", f"unavailable here ({type(exc).__name__})"
    return f"  {name:20}  {entry.modality:8}  {outputs:38}  {fingerprint}\n  {'':20}  {entry.summary}"


def format_models(specs: list[SourceSpec], lake: Lake, registry: ModelRegistry, instance: dg.DagsterInstance) -> str:
    """The encoder catalog, then one block per source: active, target, and partitions complete per model."""
    lines = ["encoders", f"  {'name':20}  {'modality':8}  {'outputs':38}  fingerprint"]
    lines += [_encoder_line(name, registry) for name in CATALOG]
    lines.append("\nsources")
    for spec in specs:
        target = registry.target(spec)
        record = registry.active_record(spec, lake)
        registered = len(spec.partitions.get_partition_keys(dynamic_partitions_store=instance))
        covered = coverage(spec, lake, target)
        names = model_names(spec, registry)
        active = f"{record.encoder} (since {record.switched_at})" if record else f"{target.name} (no cutover yet: the target serves)"
        lines += [f"  {spec.name}", f"    active   {active}", f"    target   {target.name}  {target.fingerprint}",
                  f"    partitions {registered} registered, {len(covered.rows)} with rows"]
        for table in sorted(covered.embedded):
            complete = len(covered.complete_partitions(table))
            lines.append(f"      {names.get(table, table):20}  {complete}/{len(covered.rows)} partitions embedded  ({table})")
        if not covered.embedded:
            lines.append("      no embeddings yet")
    return "\n".join(lines)
