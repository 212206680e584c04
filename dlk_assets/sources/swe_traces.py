"""SWE agent traces: read from Hugging Face or from the bundled sample, one shard at a time.

Both are read from their parquet row groups (`ParquetSource`); the bundled sample is a parquet file
with the same columns as the real dataset, so the code path is the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dlk_assets.sources.shards import (
    BadRecordError,
    ParquetSource,
    ShardRead,
    read_shard_records,
    shard_key,
)
from dlk_assets.sources.swe_sample import bundled_sample_path

HF_SWE_DATASET = "DCAgent/neulab-nebius-swe-agent-trajectories-sandboxes-traces-terminus-2"
BUNDLED_SAMPLE = "bundled-sample"
TEXT_FIELDS = ("agent", "model", "model_provider", "date", "task", "episode", "run_id", "trial_name")
IDENTITY_FIELDS = ("agent", "model", "run_id", "trial_name", "episode", "task")


@dataclass(frozen=True)
class TraceRecord:
    """One agent trajectory as it arrived: its metadata and every message in order."""

    position: int
    agent: str
    model: str
    model_provider: str
    date: str
    task: str
    episode: str
    run_id: str
    trial_name: str
    conversations: list[dict[str, str]]

    @property
    def row_key(self) -> str:
        """Deterministic key from what identifies a trace (not its stream position, which can shift)."""
        identity = json.dumps([getattr(self, name) for name in IDENTITY_FIELDS])
        return "swe:" + hashlib.sha256(identity.encode()).hexdigest()[:24]


def parse_trace(raw: dict[str, Any], position: int) -> TraceRecord:
    """Turn one raw item into a `TraceRecord`, or raise `BadRecordError` naming the item and field."""
    item = f"stream position {position}" + (f" (run_id {raw['run_id']})" if raw.get("run_id") else "")
    missing = [name for name in (*TEXT_FIELDS, "conversations") if name not in raw]
    if missing:
        raise BadRecordError(f"{item}: missing field(s) {', '.join(missing)}")
    values = {}
    for name in TEXT_FIELDS:
        value = raw[name]
        if value is not None and not isinstance(value, str):
            raise BadRecordError(f"{item}: field {name!r} must be text, got {type(value).__name__}")
        values[name] = value or ""
    if not values["task"].strip():
        raise BadRecordError(f"{item}: field 'task' is empty")
    conversations = raw["conversations"]
    if not isinstance(conversations, list) or not conversations:
        raise BadRecordError(f"{item}: field 'conversations' must be a non-empty list of messages")
    messages = []
    for index, message in enumerate(conversations):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
            raise BadRecordError(f"{item}: conversations[{index}] must have text 'role' and 'content'")
        messages.append({"role": message["role"], "content": message["content"]})
    return TraceRecord(position=position, conversations=messages, **values)


@dataclass(frozen=True)
class SweTraceStream(ParquetSource):
    """Where traces come from: a Hugging Face dataset id, or parquet files of the same shape."""

    def bundled_files(self) -> list[str]:
        return [bundled_sample_path()]

    def read_shard(self, index: int, shard_size: int, on_bad_record: str = "skip") -> ShardRead[TraceRecord]:
        """Read shard `index`; bad records are skipped and reported, or raise when `on_bad_record='fail'`.
        The same trace twice (same identity fields) keeps its first copy."""
        return read_shard_records(
            self.iter_raw(index * shard_size, shard_size), parse_trace, lambda raw: f"run_id {raw.get('run_id')}",
            on_bad_record, f"{shard_key(index)} is empty: the source {self.label} has no traces at positions "
            f"{index * shard_size}..{(index + 1) * shard_size - 1} (shard size {shard_size})",
            identity=lambda record: record.row_key,
        )
