"""Is the target encoder ready to serve? Coverage of its table and the cutover gate (no Dagster here)."""

from __future__ import annotations

from dataclasses import dataclass

from dlk_assets.defs.pipeline.serving import (
    embeddings_table,
    model_tables,
    open_existing,
    search_table,
)
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Lake
from dlk_assets.models.coverage import Coverage
from dlk_assets.models.gate import GateDecision, decide
from dlk_assets.models.probes import ProbeScore, score_probes
from dlk_assets.models.registry import ModelRegistry


def coverage(spec: SourceSpec, lake: Lake, target: Encoder) -> Coverage:
    """Per partition of the rows table: how many rows each per-model table holds, against the target."""
    rows = lake.table(spec.rows_table).partition_counts() if lake.exists(spec.rows_table.name) else {}
    embedded = {name: open_existing(lake, name).partition_counts() for name in model_tables(spec, lake)}
    return Coverage(spec.embeddings_table_name(target.fingerprint), rows, embedded)


def probe_score(spec: SourceSpec, lake: Lake, encoder: Encoder) -> ProbeScore | None:
    """The encoder's recall on the source's probe set, over its own table (None when it has no rows)."""
    try:
        table = embeddings_table(spec, lake, encoder)
    except LookupError:
        return None
    if not len(table):
        return None
    return score_probes(spec.probes, lambda query, k: search_table(spec, table, encoder, query, spec.search.probe_mode, k))


@dataclass(frozen=True)
class GateEvaluation:
    """The gate's decision with what it looked at: both models, their scores, and the target's coverage."""

    target: Encoder
    active: Encoder | None  # None before the first cutover
    coverage: Coverage
    target_score: ProbeScore | None
    active_score: ProbeScore | None
    decision: GateDecision


def evaluate_gate(spec: SourceSpec, lake: Lake, registry: ModelRegistry) -> GateEvaluation:
    """Compare the target with the active model on the probe set, once the target has every row."""
    target = registry.target(spec)
    active = registry.installed_active(spec, lake)  # None: first cutover, or the active model is no longer installed
    other = active if active and active.fingerprint != target.fingerprint else None  # a model to compare with
    covered = coverage(spec, lake, target)
    target_score = probe_score(spec, lake, target)
    active_score = probe_score(spec, lake, other) if other else None
    decision = decide(target.name, other.name if other else None, covered.items_to_embed, target_score, active_score,
                      registry.min_recall_delta(spec))
    if target_score is None and not decision.items_missing:
        decision = GateDecision(False, f"{target.name} has no embeddings yet", None, None, decision.min_recall_delta, 0)
    return GateEvaluation(target, active, covered, target_score, active_score, decision)
