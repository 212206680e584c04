"""Pure row builders for the SWE-trace tables."""

from __future__ import annotations

from typing import Any

from dlk_assets.defs.swe_traces.summary import summarize
from dlk_assets.defs.swe_traces.tables import TRACE_COLUMNS
from dlk_assets.lake.schema import DAGSTER_RUN_ID
from dlk_assets.sources.swe_traces import TraceRecord


def trace_row(record: TraceRecord, source: str, dagster_run_id: str) -> dict[str, Any]:
    """The append-only `swe_traces` row: every field as it arrived, messages in order."""
    return {
        "row_key": record.row_key, **{c.name: getattr(record, c.name) for c in TRACE_COLUMNS},
        "conversations": {"messages": record.conversations}, "stream_position": record.position,
        "source": source, DAGSTER_RUN_ID: dagster_run_id,
    }


def memory_row(trace: dict[str, Any], dagster_run_id: str) -> dict[str, Any]:
    """The `swe_memory` row: the trace's metadata and a compact summary of its conversation."""
    summary = summarize(trace["conversations"]["messages"])
    return {
        "row_key": trace["row_key"], **{c.name: trace[c.name] for c in TRACE_COLUMNS},
        "outcome": summary.outcome, "errors": " ".join(summary.errors), "commands": {"commands": summary.commands},
        "message_count": summary.message_count, "summary": summary.text,
        "source": trace["source"], DAGSTER_RUN_ID: dagster_run_id,
    }
