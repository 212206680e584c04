"""Which encoder serves each source, kept in the lake so every process and profile sees the same answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlk_assets.lake.schema import (
    DAGSTER_RUN_ID,
    ENCODER_FINGERPRINT,
    Column,
    Kind,
    TableSchema,
)
from dlk_assets.lake.tables import Lake

ACTIVE_MODELS = TableSchema("dlk_active_models", (
    Column("encoder", Kind.TEXT), Column(ENCODER_FINGERPRINT, Kind.TEXT), Column("embeddings_table", Kind.TEXT),
    Column("table_version", Kind.TEXT), Column("gate", Kind.JSON), Column("switched_at", Kind.TEXT),
    Column(DAGSTER_RUN_ID, Kind.TEXT),
))


@dataclass(frozen=True)
class ActiveModel:
    """A cutover: the encoder that serves a source since then, its table, and the gate it passed."""

    source: str
    encoder: str
    encoder_fingerprint: str
    embeddings_table: str
    table_version: str
    gate: dict[str, Any]
    switched_at: str
    dagster_run_id: str


def read_active(lake: Lake, source: str) -> ActiveModel | None:
    """The source's active model, or None before its first cutover."""
    if not lake.exists(ACTIVE_MODELS.name):
        return None
    rows = lake.table(ACTIVE_MODELS).read_partition(source)
    if not rows:
        return None
    row = rows[0]
    return ActiveModel(source, row["encoder"], row[ENCODER_FINGERPRINT], row["embeddings_table"], row["table_version"],
                       row["gate"], row["switched_at"], row[DAGSTER_RUN_ID])


def write_active(lake: Lake, record: ActiveModel) -> str:
    """Make `record` the source's active model in one commit; returns the registry table's version."""
    row = {"row_key": f"active:{record.source}", "encoder": record.encoder, ENCODER_FINGERPRINT: record.encoder_fingerprint,
           "embeddings_table": record.embeddings_table, "table_version": record.table_version, "gate": record.gate,
           "switched_at": record.switched_at, DAGSTER_RUN_ID: record.dagster_run_id}
    return lake.table(ACTIVE_MODELS).replace_partition(
        record.source, [row], f"cutover {record.source}: {record.encoder} ({record.encoder_fingerprint})").version
