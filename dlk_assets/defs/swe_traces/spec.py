"""SWE agent memory described once: what the shared pipeline builds from (embeddings, indexes, checks, cutover)."""

from __future__ import annotations

from typing import Any

from dlk_assets.defs.pipeline.hits import RANK, SCORE, HitColumn, value_column
from dlk_assets.defs.pipeline.spec import Embedder, Lineage, SearchSpec, SourceSpec
from dlk_assets.defs.shard_sensors import register_all_shards
from dlk_assets.defs.swe_traces.assets import swe_memory, swe_traces
from dlk_assets.defs.swe_traces.partitions import swe_shards
from dlk_assets.defs.swe_traces.search import MODES, RESULT_COLUMNS, search_memory
from dlk_assets.defs.swe_traces.sensors import SWE_JOB, swe_shard_sensor
from dlk_assets.defs.swe_traces.tables import MEMORY_COLUMNS, SWE_MEMORY, SWE_TRACES
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.schema import Column, Kind
from dlk_assets.retrieval.filters import Comparison


def memory_columns(encoder: Encoder) -> tuple[Column, ...]:
    """One pooled vector per memory row."""
    return (Column("embedding", Kind.VECTOR, encoder.dim),)


def embed_tasks(rows: list[dict[str, Any]], encoder: Encoder, store: FileStore, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The task text's pooled vector: what a later agent's question is compared with."""
    return [{"embedding": vector} for vector in encoder.encode_pooled([row["task"] for row in rows])]


def _short(width: int):
    return lambda hit: hit.values["task"] if len(hit.values["task"]) <= width else hit.values["task"][: width - 1] + "…"


MEMORY = SourceSpec(
    name="memory", modality="text", group="swe_traces", asset_prefix="memory", partitions=swe_shards,
    ingest_assets=(swe_traces,), ingest_job=SWE_JOB, sensors=(swe_shard_sensor,),
    register_all=lambda instance, resources: register_all_shards(instance, resources["swe_source"], swe_shards),
    rows_table=SWE_MEMORY, derived_assets=(swe_memory,), equal_count_tables=(SWE_TRACES,),
    embeddings_asset="swe_memory_embeddings",
    embeddings_description="The memory rows with a pooled embedding of the task text, one table per text encoder "
                           "(the guide's copy + embedding column pattern: one table carries the BM25 text and the "
                           "vector). Says `cached` when the same memory already has vectors from the same encoder.",
    embeddings_table="swe_memory_embeddings",
    copied_columns=tuple(c.name for c in MEMORY_COLUMNS),
    embedder=Embedder(columns=memory_columns, embed=embed_tasks, unit="texts", batch_size=128),
    indexes=(("embedding", "clustered"), ("task", "bm25"), ("errors", "bm25")),
    search=SearchSpec(
        modes=MODES, run=search_memory, select=RESULT_COLUMNS, probe_mode="vector",
        columns=(RANK, SCORE, value_column("outcome", width=8), value_column("run_id", width=36), HitColumn("task", _short(70))),
    ),
    lineage=Lineage(
        item_help="an agent run_id (see `dlk replay --list`)", rows_for=lambda item: Comparison("run_id", "==", item),
        origin_table=SWE_TRACES, origin_key=lambda row: row["row_key"],
        describe_origin=lambda row: {"dataset": row["source"], "shard": row["partition"],
                                     "stream_position": row["stream_position"], "episode": row["episode"]},
        item_of=lambda hit: hit["run_id"],
    ),
)
