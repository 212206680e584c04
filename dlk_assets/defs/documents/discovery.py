"""Which document folders to run now: new ones, and registered ones whose files changed (pure; the
sensor uses it).

The cursor keeps, per folder, the fingerprint last run (names, sizes and modification times of its
files) and how many times it changed. A folder runs when it is new or its fingerprint differs; the
run key is `<folder>@<change number>:<fingerprint>`, so a tick evaluated twice launches nothing twice,
while a folder edited back to an earlier state (a new change number) still runs. A folder the cursor
knows but the instance no longer has was deleted in the UI: it stays deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FolderState:
    """What the sensor last ran for a folder."""

    fingerprint: str
    changes: int


@dataclass(frozen=True)
class FolderRun:
    """One run to request: the folder's partition key and the run key."""

    partition_key: str
    run_key: str


@dataclass
class FolderPlan:
    """What a tick does: partitions to add, runs to request, and the next cursor."""

    new_keys: list[str] = field(default_factory=list)
    runs: list[FolderRun] = field(default_factory=list)
    seen: dict[str, FolderState] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # over this tick's limit: the next tick takes them

    def cursor(self) -> str:
        """The sensor cursor after this tick: `{key: [fingerprint, changes]}` for every folder seen."""
        return json.dumps({key: [state.fingerprint, state.changes] for key, state in sorted(self.seen.items())})


def parse_cursor(cursor: str | None) -> dict[str, FolderState]:
    """The folder states a cursor holds (`{key: [fingerprint, changes]}`)."""
    if not cursor:
        return {}
    value = json.loads(cursor)
    if not isinstance(value, dict):
        raise ValueError(f"document folder sensor cursor is not a JSON object: {cursor[:80]!r}")  # noqa: TRY004 (bad stored text)
    return {str(key): FolderState(str(state[0]), int(state[1])) for key, state in value.items()}


def plan_folder_runs(fingerprints: dict[str, str], registered: set[str], seen: dict[str, FolderState], limit: int) -> FolderPlan:
    """Runs for listed folders (partition key -> fingerprint, in configuration order) that are new or
    changed, at most `limit` of them; folders deleted in the UI are left alone."""
    plan = FolderPlan(seen=dict(seen))
    for key, fingerprint in fingerprints.items():
        before = seen.get(key)
        if key not in registered and before is not None:
            continue  # registered once, then deleted in the UI
        if key in registered and before is not None and before.fingerprint == fingerprint:
            continue
        if len(plan.runs) >= limit:
            plan.deferred.append(key)
            continue
        changes = before.changes + 1 if before else 1
        if key not in registered:
            plan.new_keys.append(key)
        plan.runs.append(FolderRun(key, f"{key}@{changes}:{fingerprint}"))
        plan.seen[key] = FolderState(fingerprint, changes)
    return plan
