"""The cutover gate: the target may replace the active model only when it is complete and not worse."""

from __future__ import annotations

from dataclasses import dataclass

from dlk_assets.models.probes import ProbeScore


@dataclass(frozen=True)
class GateDecision:
    """Whether the target may serve, and the numbers behind the answer."""

    passed: bool
    reason: str
    target_recall: float | None
    active_recall: float | None
    min_recall_delta: float
    items_missing: int


def decide(target: str, active: str | None, items_missing: int, target_score: ProbeScore | None,
           active_score: ProbeScore | None, min_recall_delta: float) -> GateDecision:
    """Refuse while the target lacks rows; then compare probe recall with the active model's.

    Only completeness counts when there is nothing to compare with: a first cutover, active ==
    target, or an active model that cannot be scored here (`active_recall` None, e.g. no longer
    installed); the reason then says so.
    """
    target_recall = target_score.recall if target_score else None
    active_recall = active_score.recall if active_score else None
    if items_missing:
        return GateDecision(False, f"{target} has not embedded {items_missing} item(s) yet: backfill them first",
                            target_recall, active_recall, min_recall_delta, items_missing)
    if active is None or active == target or active_recall is None or target_recall is None:
        return GateDecision(True, f"{target} has every row; no other model to compare with", target_recall, active_recall,
                            min_recall_delta, 0)
    delta = target_recall - active_recall
    if delta < min_recall_delta:
        return GateDecision(False, f"{target} recall@{target_score.k} {target_recall:.3f} is {delta:+.3f} against "
                            f"{active} ({active_recall:.3f}); the gate needs at least {min_recall_delta:+.3f}",
                            target_recall, active_recall, min_recall_delta, 0)
    return GateDecision(True, f"{target} recall@{target_score.k} {target_recall:.3f} ({delta:+.3f} against {active} "
                        f"{active_recall:.3f}; the gate needs {min_recall_delta:+.3f})", target_recall, active_recall,
                        min_recall_delta, 0)
