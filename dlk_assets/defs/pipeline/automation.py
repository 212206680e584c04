"""When things run by themselves, and the sensor that evaluates it (running from the first `dagster dev`).

- A source's sensor runs only its ingest assets per new partition. Rows derived from them and the
  embeddings follow by automation (eager, per partition); when several partitions arrive at once the
  sensor emits a backfill, so each asset's backfill policy batches them (the model loads once per run).
  A model change is not new data: re-embedding after it is a backfill a person launches (it costs).
- The coverage check on an embeddings asset runs after its partitions update and when its code version
  (the target encoder's fingerprint) changes, so a model change shows at asset level with nobody clicking.
- An index is rebuilt after its embeddings update, once no embedding run is in flight (a backfill
  finishes before the index rebuilds once).
- A cutover runs after its index updated and every check of that index run passed, the gate included;
  while the gate fails (a backfill still running) nothing is requested, so no run fails for it.
- Slices follow their cutover (eager); new or edited slices in slices.yaml are exported when they appear.
"""

import dagster as dg

AC = dg.AutomationCondition

# Per partition: a new or updated upstream partition is processed (also rows and embeddings of a new shard).
FOLLOW_UPSTREAM = AC.eager()

COVERAGE_CHECK_CONDITION = (
    (AC.any_deps_updated() | AC.any_deps_match(AC.code_version_changed())).since_last_handled()
    & ~AC.any_deps_in_progress()
).with_label("after embeddings change or the target encoder changes")

INDEX_CONDITION = (
    AC.any_deps_updated().since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress()
).with_label("after embeddings update, once none are in progress")

# `newly_updated`, not `any_deps_updated`: the latter counts an index requested in the same tick, which
# would put the cutover in the index's run, judged by the gate's previous result instead of this one.
CUTOVER_CONDITION = (
    AC.any_deps_match(AC.newly_updated()).since_last_handled()
    & AC.all_deps_match(AC.all_checks_match(AC.check_passed(), blocking_only=False))
    & ~AC.any_deps_in_progress() & ~AC.in_progress()
).with_label("after the index updates and all its checks, the gate included, pass")

# Slices also follow an edit of slices.yaml (their code version), which changes no upstream data.
SLICES_CONDITION = (FOLLOW_UPSTREAM | (AC.code_version_changed() & ~AC.any_deps_missing() & ~AC.in_progress())
                    ).with_label("eager, or after slices.yaml changes")

automation_sensor = dg.AutomationConditionSensorDefinition(
    "dlk_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the assets' automation conditions: indexes, checks, cutovers and slices follow new data by themselves.",
)
