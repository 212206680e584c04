"""Pure row builders for the SWE-trace tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlk_assets.defs.swe_traces.summary import summarize
from dlk_assets.defs.swe_traces.tables import MEMORY_COLUMNS, TRACE_COLUMNS
from dlk_assets.sources.swe_traces import TraceRecord


def trace_row(record: TraceRecord, source: str, dagster_run_id: str) -> dict[str, Any]:
    """The append-only `swe_traces` row: every field as it arrived, messages in order."""
    return {
        "row_key": record.row_key, **{c.name: getattr(record, c.name) for c in TRACE_COLUMNS},
        "conversations": {"messages": record.conversations}, "stream_position": record.position,
        "source": source, "dagster_run_id": dagster_run_id,
    }


def memory_row(trace: dict[str, Any], dagster_run_id: str) -> dict[str, Any]:
    """The `swe_memory` row: the trace's metadata and a compact summary of its conversation."""
    summary = summarize(trace["conversations"]["messages"])
    return {
        "row_key": trace["row_key"], **{c.name: trace[c.name] for c in TRACE_COLUMNS},
        "outcome": summary.outcome, "errors": " ".join(summary.errors), "commands": {"commands": summary.commands},
        "message_count": summary.message_count, "summary": summary.text,
        "source": trace["source"], "dagster_run_id": dagster_run_id,
    }


def memory_embedding_row(memory: dict[str, Any], embedding: np.ndarray, fingerprint: str, dagster_run_id: str) -> dict[str, Any]:
    """The memory row with its task embedding."""
    return {
        "row_key": memory["row_key"], **{c.name: memory[c.name] for c in MEMORY_COLUMNS},
        "model_fingerprint": fingerprint, "embedding": embedding, "source": memory["source"], "dagster_run_id": dagster_run_id,
    }
