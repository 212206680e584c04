"""Drive the project's assets through Dagster with an instance, as the demo and `dlk migrate` do.

Every step is a real Dagster run in the given instance (`$DAGSTER_HOME`), so it shows in the UI
with its logs, metadata and check results; nothing here writes a table behind Dagster's back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dlk_assets.defs.gpu import ensure_gpu_pool
from dlk_assets.defs.pipeline.embeddings import EMBED_PARTITIONS_PER_RUN
from dlk_assets.defs.pipeline.spec import SourceSpec

# Runs log to the instance (the UI shows every line); the terminal gets the Operator's own summary lines,
# and a failure comes back as one message instead of Dagster's console stack traces.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Dagster's tags for a run over a range of partitions (what a multi-partition backfill run carries).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


class OperationFailed(RuntimeError):
    """A run failed; the message is the failing step's own words."""


@dataclass
class RunOutcome:
    """What one run did: whether it succeeded, its check results, and each asset's metadata."""

    success: bool
    run_id: str
    failure: str = ""
    checks: dict[str, dg.AssetCheckEvaluation] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    def value(self, asset: str, key: str, default: Any = None) -> Any:
        """A metadata value an asset reported in this run, as a plain value."""
        return metadata_value(self.metadata.get(asset, {}), key, default)


def metadata_value(metadata: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """A plain value from Dagster metadata (`MetadataValue.value`), or `default` when absent."""
    entry = metadata.get(key)
    return default if entry is None else getattr(entry, "value", entry)


def _root_message(error) -> str:
    # Dagster wraps the asset's own exception ("Error occurred while executing op ..."): report that
    # exception, not Dagster's wrapper and not what it was raised from (a library's less clear words).
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.message.strip()


def _outcome(result: dg.ExecuteInProcessResult) -> RunOutcome:
    failures = [_root_message(event.step_failure_data.error) for event in result.all_node_events
                if event.is_step_failure and event.step_failure_data and event.step_failure_data.error]
    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    metadata: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata.setdefault(materialization.asset_key.to_user_string(), {}).update(materialization.metadata)
    return RunOutcome(result.success, result.run_id, "; ".join(failures), checks, metadata)


class Operator:
    """Runs selections of the definitions' assets and checks in-process, recorded in `instance`."""

    def __init__(self, instance: dg.DagsterInstance, defs: dg.Definitions, resources: dict[str, Any],
                 log: Callable[[str], None] = print):
        self.instance, self.defs, self.resources, self.log = instance, defs, resources, log
        self.assets = [*defs.assets, *defs.asset_checks]
        ensure_gpu_pool(instance)

    def run(self, selection: dg.AssetSelection, partition_key: str | None = None, tags: dict[str, str] | None = None,
            fail: bool = True) -> RunOutcome:
        """One run of `selection`; raises `OperationFailed` with the step's error when it fails and `fail`."""
        result = dg.materialize(self.assets, selection=selection, instance=self.instance, resources=self.resources,
                                partition_key=partition_key, tags=tags, raise_on_error=False, run_config=QUIET_CONSOLE)
        outcome = _outcome(result)
        if fail and not outcome.success:
            raise OperationFailed(outcome.failure or f"run {outcome.run_id} failed")
        return outcome

    def ingest(self, spec: SourceSpec) -> list[str]:
        """Register every partition the source holds, ingest each, then derive rows and embed them all,
        with the batching each asset's backfill policy asks for (what the sensor and automation do)."""
        keys = spec.register_all(self.instance, self.resources)
        if not keys:
            raise OperationFailed(f"the {spec.name} source has nothing to ingest")
        for key in keys:
            self.log(f"{spec.name}: ingesting {key}")
            self.run(dg.AssetSelection.assets(*spec.ingest_assets), partition_key=key)
        for derived in spec.derived_assets:  # lake to lake: the whole range in one run
            self.run(dg.AssetSelection.assets(derived), tags=self._range(keys))
        self.backfill(spec, EMBED_PARTITIONS_PER_RUN)
        return keys

    @staticmethod
    def _range(keys: Sequence[str]) -> dict[str, str]:
        return {RANGE_START: keys[0], RANGE_END: keys[-1]}

    def backfill(self, spec: SourceSpec, per_run: int, tags: dict[str, str] | None = None) -> list[RunOutcome]:
        """The embeddings of every partition, `per_run` contiguous partitions per run (as a backfill would)."""
        keys = spec.partitions.get_partition_keys(dynamic_partitions_store=self.instance)
        outcomes = []
        for start in range(0, len(keys), per_run):
            chunk = keys[start:start + per_run]
            outcome = self.run(dg.AssetSelection.assets(spec.embeddings_asset).without_checks(),
                               tags={**self._range(chunk), **(tags or {})})
            embedded, rate = (outcome.value(spec.embeddings_asset, key) for key in ("items_embedded", "items_per_second"))
            self.log(f"{spec.name}: embedded {chunk[0]}..{chunk[-1]} ({len(chunk)} partition(s)): {embedded} "
                     f"{spec.embedder.unit}" + (f" at {rate:.1f}/s" if embedded else ", all cached"))
            outcomes.append(outcome)
        return outcomes

    def check(self, spec: SourceSpec, role: str) -> dg.AssetCheckEvaluation:
        """Run one of the source's checks on its own and return its evaluation."""
        name = spec.asset_name(role)
        key = next(k for k in self.defs.resolve_asset_graph().asset_check_keys if k.name == name)
        return self.run(dg.AssetSelection.checks(key)).checks[name]

    def build_index(self, spec: SourceSpec) -> RunOutcome:
        """The index with its checks; blocking checks that fail stop here."""
        self.log(f"{spec.name}: building {spec.asset_name('index')} and running its checks")
        outcome = self.run(dg.AssetSelection.assets(spec.asset_name("index")))
        failed = [c for c in outcome.checks.values() if not c.passed and c.check_name != spec.asset_name("cutover_gate")]
        if failed:
            raise OperationFailed(f"{spec.name} checks failed: {', '.join(c.check_name for c in failed)}")
        return outcome

    def cutover(self, spec: SourceSpec, fail: bool = True) -> RunOutcome:
        """Materialize `<prefix>_active_model`: it switches to the target only when the gate passes."""
        self.log(f"{spec.name}: cutover ({spec.asset_name('active_model')})")
        return self.run(dg.AssetSelection.assets(spec.asset_name("active_model")), fail=fail)

    def export_slices(self, spec: SourceSpec) -> list[str]:
        """Every slice of the source in one run (the partitions of `<prefix>_slices`, a single-run backfill)."""
        name = spec.asset_name("slices")
        graph = self.defs.resolve_asset_graph()
        if not graph.has(dg.AssetKey(name)):
            return []
        slices = list(graph.get(dg.AssetKey(name)).partitions_def.get_partition_keys())
        self.log(f"{spec.name}: exporting training slices {', '.join(slices)}")
        self.run(dg.AssetSelection.assets(name), tags=self._range(slices))
        return slices

    def cleanup(self, spec: SourceSpec) -> RunOutcome:
        """Materialize `<prefix>_retired_models`: drop tables of models that neither serve nor are the target."""
        return self.run(dg.AssetSelection.assets(spec.asset_name("retired_models")))


def materialize_sources(operator: Operator, specs: Sequence[SourceSpec]) -> None:
    """Each source end to end (ingest, coverage, index and checks, cutover), then every slice."""
    for spec in specs:
        operator.ingest(spec)
        coverage = operator.check(spec, "embedded_by_target")
        if not coverage.passed:
            raise OperationFailed(f"{spec.name}: {coverage.description}")
        operator.build_index(spec)
        operator.cutover(spec)
    for spec in specs:
        operator.export_slices(spec)
