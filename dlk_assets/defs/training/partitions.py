"""One partition per slice in slices.yaml: the same names as the slices assets' partitions."""

import dagster as dg

from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.slices.specs import SliceSpec, load_slices
from dlk_assets.defs.sources import SOURCES


def sliced_sources() -> list[SourceSpec]:
    """The sources that export slices (what `build_definitions` validates slices.yaml against)."""
    return [spec for spec in SOURCES.values() if spec.slices]


def slice_specs() -> dict[str, SliceSpec]:
    """slices.yaml, validated as `build_definitions` validates it."""
    return load_slices(sources={spec.name: spec.search.modes for spec in sliced_sources()})


finetune_slices = dg.StaticPartitionsDefinition(sorted(slice_specs()))
