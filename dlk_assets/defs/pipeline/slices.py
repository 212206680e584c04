"""A source's training slices: one partition per named retrieval in slices.yaml, served by the active model."""


import hashlib
import json
from dataclasses import asdict
from typing import Any

import dagster as dg

from dlk_assets.defs.gpu import GPU_STEP
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.pipeline.automation import SLICES_CONDITION
from dlk_assets.defs.pipeline.run_context import partition_metadata
from dlk_assets.defs.pipeline.serving import embeddings_table
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.slices.export import MANIFEST, export_slice
from dlk_assets.defs.slices.specs import SliceSpec
from dlk_assets.media.images import contact_sheet_data_uri
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.resources import dagster_home

SLICES_FOLDER = "slices"


def _specs_version(specs: list[SliceSpec]) -> str:
    # Editing a slice in slices.yaml changes this, so the UI marks the source's slices as changed.
    text = json.dumps([asdict(s) for s in specs], sort_keys=True)
    return "slices-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _export(spec: SourceSpec, slice_spec: SliceSpec, table, encoder, store, log) -> dict[str, Any]:
    """Export one slice under $DAGSTER_HOME/slices/<name>/ and describe it for the UI."""
    export = spec.slices
    relative = f"{SLICES_FOLDER}/{slice_spec.name}"
    manifest = export_slice(slice_spec, spec, table, encoder, store, dagster_home() / relative)
    items, cut = manifest["items"], manifest["cut"]
    log(f"slice {slice_spec.name}: {len(items)} item(s) kept, {len(cut)} cut ({manifest['rules']}) from "
        f"{manifest['table']} at version {manifest['table_version']}")
    previews = [export.preview(store, item["file_id"]) for item in items]
    return {
        "source": spec.name, "query": slice_spec.query, "mode": manifest["mode"], "k": slice_spec.k,
        "where": slice_spec.where or "", "rows": len(items), "kept": len(items), "cut": len(cut),
        "rules": manifest["rules"], "table": manifest["table"],
        "table_version": manifest["table_version"], "table_tag": manifest["table_tag"],
        "manifest": dg.MetadataValue.path(f"{relative}/{MANIFEST}"), "manifest_root": "$DAGSTER_HOME",
        "items": dg.MetadataValue.md(markdown_table(("rank", "score", "item", "partition", "row_key", "file_id"), [
            (i["rank"], i["score"], export.item_name(i), i["partition"], i["row_key"], i["file_id"]) for i in items])),
        # What the keep rules dropped, so a short slice explains itself without opening the manifest.
        "cut_items": dg.MetadataValue.md(markdown_table(("rank", "score", "x top", "item", "reason", "detail"), [
            (c["rank"], c["score"], "-" if c["relative_to_top"] is None else c["relative_to_top"], export.item_name(c),
             c["reason"], c["detail"]) for c in cut]) if cut else "nothing cut"),
        "thumbnails": dg.MetadataValue.md(f"![hits]({contact_sheet_data_uri(previews, 96)})" if previews else "no hits"),
    }


def build_slices(spec: SourceSpec, cutover: dg.AssetsDefinition, slice_specs: dict[str, SliceSpec]) -> dg.AssetsDefinition | None:
    """`<prefix>_slices`, partitioned by the source's slice names; None when the source has none."""
    mine = sorted((s for s in slice_specs.values() if s.source == spec.name), key=lambda s: s.name)
    if not mine or spec.slices is None:
        return None
    by_name = {s.name: s for s in mine}

    @dg.asset(
        name=spec.asset_name("slices"), backfill_policy=dg.BackfillPolicy.single_run(), partitions_def=dg.StaticPartitionsDefinition([s.name for s in mine]), deps=[cutover],
        group_name="slices", kinds={"deeplake", "pytorch"}, code_version=_specs_version(mine), **GPU_STEP,
        automation_condition=SLICES_CONDITION, required_resource_keys={"lake", "files", "models"},
        description=f"A named retrieval over {spec.name}, run by the active model on a pinned (tagged) table version and "
                    f"exported to $DAGSTER_HOME/{SLICES_FOLDER}/<name>/ with a manifest (query, mode, encoder, table "
                    "version, ranked row keys with their partitions, scores, sha256s, why each was kept). A slice's "
                    "min_score / min_relative_score / dedupe rules may keep fewer than k; what they cut is listed "
                    "with its reason.",
    )
    def slices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        registry: ModelRegistry = context.resources.models.registry()
        lake, store = context.resources.lake.lake(), context.resources.files.store()
        encoder = registry.active(spec, lake)
        table = embeddings_table(spec, lake, encoder)
        per_slice = {}
        for name in context.partition_keys:  # a backfill of every slice loads the model once
            per_slice[name] = _export(spec, by_name[name], table, encoder, store, context.log.info)
        return dg.MaterializeResult(metadata={"encoder": encoder.name, "encoder_fingerprint": encoder.fingerprint,
                                              **partition_metadata(context, per_slice)})

    return slices
