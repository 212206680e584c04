"""`dlk migrate`: move a source to another encoder through Dagster: set the target, backfill, gate, cutover."""

from __future__ import annotations

import sys
from collections.abc import Callable

import dagster as dg

from dlk_assets.defs.pipeline.embeddings import EMBED_PARTITIONS_PER_RUN
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.models.catalog import canonical_name
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.models.settings import source_entry, write_source_entry
from dlk_assets.operations import Operator, metadata_value

MIGRATION_TAG = "dlk/migration"


def _value(evaluation: dg.AssetCheckEvaluation, key: str, default="n/a"):
    return metadata_value(evaluation.metadata, key, default)


def migrate(spec: SourceSpec, to: str, registry: ModelRegistry, operator_for_target: Callable[[], Operator],
            log: Callable[[str], None] = print) -> int:
    """Set the target, show the backfill's cost, backfill every partition, run the gate, cut over, re-export slices.

    Returns 0 after a cutover, 1 when the gate refuses it: the active model keeps serving and the
    target is set back to what it was, so new partitions are not embedded twice; the refused model's
    table stays, inert, until `dlk cleanup`.
    """
    name = canonical_name(to, spec.modality)
    # The registry's encoders are the ones the runs will use: load one here, so a model that cannot run
    # on this machine (weights missing, no GPU) is refused before it becomes the target of anything.
    registry.encoder(name).load()
    previous = registry.target_name(spec)
    written_before = source_entry(spec.name).get("target")  # None: the environment or the default decided
    path = write_source_entry(spec.name, target=name)
    log(f"{spec.name}: target encoder set to {name} in {path}")
    operator = operator_for_target()  # definitions built now carry the new target's code version
    before = operator.check(spec, "embedded_by_target")
    log(f"{spec.name}: {_value(before, 'partitions_to_embed')} partition(s), {_value(before, 'items_to_embed')} "
        f"{spec.embedder.unit} to embed with {name}; {_value(before, 'target_items_per_second')} {spec.embedder.unit}/s "
        f"({_value(before, 'throughput_source')}); expected {_value(before, 'expected_duration')}")
    operator.backfill(spec, EMBED_PARTITIONS_PER_RUN, tags={MIGRATION_TAG: f"{spec.name}:{name}"})
    after = operator.check(spec, "embedded_by_target")
    log(f"{spec.name}: every partition embedded by {name}: {'yes' if after.passed else 'no: ' + str(after.description)}")
    gate = operator.build_index(spec).checks[spec.asset_name("cutover_gate")]
    log(f"{spec.name}: gate {'passed' if gate.passed else 'FAILED'}: {gate.description}")
    log(str(_value(gate, "recall_side_by_side", "")))
    if not gate.passed:
        write_source_entry(spec.name, target=written_before)  # exactly as it was: a pinned entry or none
        log(f"{spec.name}: target encoder set back to {previous} in {path}")
        print(f"dlk: {spec.name} cutover refused: {gate.description}; {_value(gate, 'active_encoder')} keeps serving",
              file=sys.stderr)
        return 1
    outcome = operator.cutover(spec)
    log(f"{spec.name}: served by {outcome.value(spec.asset_name('active_model'), 'active')} "
        f"(previously {outcome.value(spec.asset_name('active_model'), 'previous')})")
    exported = operator.export_slices(spec)
    if exported:
        log(f"{spec.name}: re-exported slices {', '.join(exported)}")
    return 0
