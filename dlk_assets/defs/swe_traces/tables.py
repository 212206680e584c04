"""The SWE-trace tables' schemas. `model` and `run_id` are the agent's LLM and run; the Dagster run is
`dagster_run_id` and the embedding encoder `encoder_fingerprint`, as in every table."""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema, lineage_columns

TRACE_COLUMNS = tuple(Column(name, Kind.TEXT) for name in
                      ("agent", "model", "model_provider", "date", "task", "episode", "run_id", "trial_name"))

SWE_TRACES = TableSchema("swe_traces", (
    *TRACE_COLUMNS, Column("conversations", Kind.JSON), Column("stream_position", Kind.INT), *lineage_columns(),
))

MEMORY_COLUMNS = (
    *TRACE_COLUMNS, Column("outcome", Kind.TEXT), Column("errors", Kind.TEXT), Column("commands", Kind.JSON),
    Column("message_count", Kind.INT), Column("summary", Kind.TEXT),
)
SWE_MEMORY = TableSchema("swe_memory", (*MEMORY_COLUMNS, *lineage_columns()))
