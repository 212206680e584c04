"""The SWE-trace tables' schemas. `run_id` is the agent's run id; the Dagster run is `dagster_run_id`."""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema, model_slug

LINEAGE = (Column("source", Kind.TEXT), Column("dagster_run_id", Kind.TEXT))
TRACE_COLUMNS = tuple(Column(name, Kind.TEXT) for name in
                      ("agent", "model", "model_provider", "date", "task", "episode", "run_id", "trial_name"))

SWE_TRACES = TableSchema("swe_traces", (
    *TRACE_COLUMNS, Column("conversations", Kind.JSON), Column("stream_position", Kind.INT), *LINEAGE,
))

MEMORY_COLUMNS = (
    *TRACE_COLUMNS, Column("outcome", Kind.TEXT), Column("errors", Kind.TEXT), Column("commands", Kind.JSON),
    Column("message_count", Kind.INT), Column("summary", Kind.TEXT),
)
SWE_MEMORY = TableSchema("swe_memory", (*MEMORY_COLUMNS, *LINEAGE))


def memory_embeddings_schema(encoder) -> TableSchema:
    """The memory table plus an embedding column, per text-encoder fingerprint (the guide's copy +
    embedding column pattern: one table carries both the BM25 text and the vector)."""
    return TableSchema(f"swe_memory_embeddings__{model_slug(encoder.fingerprint)}", (
        *MEMORY_COLUMNS, Column("model_fingerprint", Kind.TEXT), Column("embedding", Kind.VECTOR, encoder.dim), *LINEAGE,
    ))
