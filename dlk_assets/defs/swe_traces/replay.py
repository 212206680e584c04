"""Deterministic replay: a trace exactly as ingested, and the runs one can replay (pure over a Table)."""

from __future__ import annotations

from typing import Any

from dlk_assets.lake.tables import Table
from dlk_assets.retrieval.filters import Comparison

LISTED_COLUMNS = ("run_id", "date", "agent", "model", "task", "episode")


def traces_for_run(table: Table, run_id: str) -> list[dict[str, Any]]:
    """Every trace row of `run_id` (one per episode), in episode order; empty when unknown."""
    rows = table.read_where(Comparison("run_id", "=", run_id))
    return sorted(rows, key=lambda row: (row["episode"], row["stream_position"]))


def recent_runs(table: Table, limit: int = 10) -> list[dict[str, Any]]:
    """The most recent distinct runs (by date, then run id), one row each."""
    seen: dict[str, dict[str, Any]] = {}
    for row in sorted(table.read_where(None, LISTED_COLUMNS), key=lambda r: (r["date"], r["run_id"]), reverse=True):
        if row["run_id"] and row["run_id"] not in seen:
            seen[row["run_id"]] = row
        if len(seen) >= limit:
            break
    return list(seen.values())


def format_trace(row: dict[str, Any]) -> str:
    """The full trace: header fields, then every message in order with its role, content untouched."""
    header = [f"run_id:         {row['run_id']}", f"agent:          {row['agent']}", f"model:          {row['model']}",
              f"model_provider: {row['model_provider']}", f"date:           {row['date']}", f"episode:        {row['episode']}",
              f"trial_name:     {row['trial_name']}", f"task:           {row['task']}"]
    messages = row["conversations"]["messages"]
    body = [f"--- [{i}] {m['role']} ---\n{m['content']}" for i, m in enumerate(messages, start=1)]
    return "\n".join(header) + f"\nmessages:       {len(messages)}\n" + "\n".join(body)


def format_runs(rows: list[dict[str, Any]], width: int = 60) -> str:
    lines = [f"{'date':10}  {'run_id':36}  {'model':44}  task"]
    for row in rows:
        task = row["task"] if len(row["task"]) <= width else row["task"][: width - 1] + "…"
        lines.append(f"{row['date']:10}  {row['run_id']:36}  {row['model'][:44]:44}  {task}")
    return "\n".join(lines)
