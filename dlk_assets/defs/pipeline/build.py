"""Build the Dagster definitions of every source from its description, plus the automation sensor."""

from __future__ import annotations

import dagster as dg

from dlk_assets.defs.pipeline.automation import automation_sensor
from dlk_assets.defs.pipeline.cutover import build_cutover
from dlk_assets.defs.pipeline.embeddings import build_embeddings
from dlk_assets.defs.pipeline.index import build_index
from dlk_assets.defs.pipeline.key_checks import build_key_checks
from dlk_assets.defs.pipeline.slices import build_slices
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.slices.specs import SliceSpec, load_slices
from dlk_assets.models.registry import ModelRegistry


def source_definitions(spec: SourceSpec, registry: ModelRegistry, slice_specs: dict[str, SliceSpec]) -> dg.Definitions:
    """files -> rows (the source's own assets) -> embeddings -> index -> cutover -> slices, with their
    checks, the ingest job its sensor launches, and the sensor."""
    embeddings, coverage_check = build_embeddings(spec, registry)
    index, index_checks = build_index(spec, registry, embeddings)
    active_model, retired_models = build_cutover(spec, registry, index)
    slices = build_slices(spec, active_model, slice_specs)
    ingest_job = dg.define_asset_job(
        spec.ingest_job, selection=dg.AssetSelection.assets(*spec.ingest_assets),
        description=f"Ingest one new {spec.name} partition ({', '.join(a.key.to_user_string() for a in spec.ingest_assets)}); "
                    f"rows, embeddings, index and the rest follow by automation.",
    )
    return dg.Definitions(
        assets=[*spec.ingest_assets, *spec.derived_assets, embeddings, index, active_model, retired_models, *([slices] if slices else [])],
        asset_checks=[coverage_check, *index_checks, *build_key_checks(spec)], jobs=[ingest_job], sensors=list(spec.sensors),
    )


def build_definitions(sources: list[SourceSpec], registry: ModelRegistry, resources: dict,
                      executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """All sources' definitions, the automation sensor, the resources of the profile and its step
    executor (None: Dagster's default)."""
    slice_specs = load_slices(sources={spec.name: spec.search.modes for spec in sources if spec.slices})
    return dg.Definitions.merge(
        *(source_definitions(spec, registry, slice_specs) for spec in sources),
        dg.Definitions(sensors=[automation_sensor], resources=resources, executor=executor),
    )
