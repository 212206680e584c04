"""Embed one partition for one encoder: skip it when current, else embed what changed and replace it.

A stored vector row is kept as it is (its vector, and the run that made it) when its row's inputs
(copied columns, encoder, settings) are unchanged, so an edit to one item of a partition embeds only
that item again. A source that names the columns its vectors depend on (`SourceSpec.embedded_columns`,
e.g. a content hash) also carries a stored vector over to any row with the same values: a chunk that
moved or whose other fields changed is not embedded again.

No Dagster here: the embeddings asset, the cost calibration and the tests all call these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlk_assets.defs.pipeline.spec import SETTINGS_COLUMN, SourceSpec
from dlk_assets.encoders.base import Encoder, batched
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.json_text import compact_json
from dlk_assets.lake.schema import DAGSTER_RUN_ID, ENCODER_FINGERPRINT, ROW_KEY
from dlk_assets.lake.tables import Lake, Table


class EmbeddingError(RuntimeError):
    """Embedding failed on a batch; the message names the partition, encoder and first row."""


def vector_inputs(spec: SourceSpec, row: dict[str, Any], fingerprint: str, settings: dict[str, Any]) -> tuple[str, str, str, str]:
    """What decides whether a stored vector row is still right: the copied inputs, the encoder, the settings."""
    copied = compact_json({name: row[name] for name in spec.copied_columns})
    return (row[ROW_KEY], copied, fingerprint, compact_json(settings))


def _stored_inputs(spec: SourceSpec, row: dict[str, Any]) -> tuple[str, str, str, str]:
    return vector_inputs(spec, row, row[ENCODER_FINGERPRINT], row[SETTINGS_COLUMN])


def writing_encoders(spec: SourceSpec, registry, lake: Lake) -> list[Encoder]:
    """The encoders a run writes, the active model first while it differs from the target: new partitions
    must reach what serves now, even when the target fails (weights missing, out of memory)."""
    target = registry.target(spec)
    active = registry.installed_active(spec, lake)
    if active is not None and active.fingerprint != target.fingerprint and \
            lake.exists(spec.embeddings_table_name(active.fingerprint)):
        return [active, target]
    return [target]


@dataclass
class PartitionWork:
    """One (partition, encoder) pair: its rows, which of them have a stored vector row that is still right,
    and whether the stored partition is already exactly what the rows need."""

    partition: str
    encoder: Encoder
    table: Table
    rows: list[dict[str, Any]]
    reusable: set[str]  # row keys whose stored vector rows were made from the same inputs
    current: bool
    spec: SourceSpec
    settings: dict[str, Any]
    carried: dict[str, str]  # row key -> the stored row whose vectors it takes

    @property
    def to_embed(self) -> list[dict[str, Any]]:
        """The rows without a vector to keep or carry over: new rows and rows whose embedded inputs changed."""
        return [row for row in self.rows if row[ROW_KEY] not in self.reusable and row[ROW_KEY] not in self.carried]

    @property
    def kept(self) -> int:
        """How many rows are written without embedding (kept or carried over)."""
        return len(self.reusable) + len(self.carried)

    def reused_rows(self) -> list[dict[str, Any]]:
        """The stored vector rows kept as they are (their vectors, and the run that made them), and rows
        built from the current rows with the vectors (and maker) of the stored row they carry over."""
        donors = set(self.carried.values())
        stored = self.table.read_rows(sorted(self.reusable | donors)) if self.reusable or donors else {}
        kept = [stored[key] for key in sorted(self.reusable)]
        if not self.carried:
            return kept
        made = tuple(column.name for column in self.spec.embedder.columns(self.encoder))
        by_key = {row[ROW_KEY]: row for row in self.rows}
        for key, donor_key in sorted(self.carried.items()):
            donor = stored[donor_key]
            kept.extend(embedding_rows(self.spec, [by_key[key]], [{name: donor[name] for name in made}], self.encoder,
                                       self.settings, donor[DAGSTER_RUN_ID]))
        return kept


def plan_partition(spec: SourceSpec, lake: Lake, partition: str, rows: list[dict[str, Any]], encoder: Encoder,
                   settings: dict[str, Any]) -> PartitionWork:
    """Open the encoder's table and compare what it holds for the partition with what the rows need, row by row."""
    table = lake.table(spec.embeddings_schema(encoder))
    vectors = tuple(c.name for c in table.schema.columns if c.is_vector)
    stored = table.read_partition(partition, (*spec.copied_columns, ENCODER_FINGERPRINT, SETTINGS_COLUMN, *vectors))
    wanted = {row[ROW_KEY]: vector_inputs(spec, row, encoder.fingerprint, settings) for row in rows}
    complete = [row for row in stored if all(_filled(row[name]) for name in vectors)]
    reusable = {row[ROW_KEY] for row in complete if wanted.get(row[ROW_KEY]) == _stored_inputs(spec, row)}
    current = len(reusable) == len(rows) == len(stored)  # an empty partition stored empty is current too
    carried: dict[str, str] = {}
    if spec.embedded_columns and not current:
        same = compact_json(settings)
        donors = {_embedded(spec, row): row[ROW_KEY] for row in complete
                  if row[ENCODER_FINGERPRINT] == encoder.fingerprint and compact_json(row[SETTINGS_COLUMN]) == same}
        carried = {row[ROW_KEY]: donors[_embedded(spec, row)] for row in rows
                   if row[ROW_KEY] not in reusable and _embedded(spec, row) in donors}
    return PartitionWork(partition, encoder, table, rows, reusable, current, spec, settings, carried)


def _embedded(spec: SourceSpec, row: dict[str, Any]) -> str:
    return compact_json({name: row[name] for name in spec.embedded_columns})


def _filled(value: Any) -> bool:
    """Whether a stored vector holds values: a column added to an existing table (a new encoder output)
    reads back empty (NaN) for the rows written before it, and those rows must be embedded again."""
    values = np.asarray(value, dtype=np.float32)
    return values.ndim > 0 and values.size > 0 and bool(np.isfinite(values).all())


@dataclass
class EmbedTimer:
    """Seconds spent in the encoder per fingerprint (file reads included), for the throughput figures."""

    seconds: dict[str, float] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)

    def add(self, fingerprint: str, items: int, seconds: float) -> None:
        self.seconds[fingerprint] = self.seconds.get(fingerprint, 0.0) + seconds
        self.items[fingerprint] = self.items.get(fingerprint, 0) + items

    def rate(self, fingerprint: str) -> float | None:
        seconds = self.seconds.get(fingerprint, 0.0)
        return self.items[fingerprint] / seconds if seconds > 0 else None


def embed_rows(spec: SourceSpec, rows: list[dict[str, Any]], encoder: Encoder, store: FileStore, settings: dict[str, Any],
               label: str, on_batch: Callable[[int], None] = lambda _: None, timer: EmbedTimer | None = None) -> list[dict[str, Any]]:
    """The embedder's values for each row, in batches; an error names the batch's first row."""
    values: list[dict[str, Any]] = []
    for batch in batched(rows, spec.embedder.batch_size):
        started = time.perf_counter()
        try:
            produced = spec.embedder.embed(list(batch), encoder, store, settings)
        except Exception as exc:  # any failure inside a model or a file read: name where it happened
            raise EmbeddingError(f"{label}: embedding with {encoder.name} failed in the batch starting at row "
                                 f"{batch[0][ROW_KEY]!r}: {type(exc).__name__}: {exc}") from exc
        if len(produced) != len(batch):
            raise EmbeddingError(f"{label}: {encoder.name} returned {len(produced)} results for {len(batch)} rows")
        if timer is not None:
            timer.add(encoder.fingerprint, len(batch), time.perf_counter() - started)
        values.extend(produced)
        on_batch(len(batch))
    return values


def embedding_rows(spec: SourceSpec, rows: list[dict[str, Any]], values: list[dict[str, Any]], encoder: Encoder,
                   settings: dict[str, Any], dagster_run_id: str) -> list[dict[str, Any]]:
    """Rows for the encoder's table: the copied columns, the vectors, and who made them."""
    return [{ROW_KEY: row[ROW_KEY], **{name: row[name] for name in spec.copied_columns},
             ENCODER_FINGERPRINT: encoder.fingerprint, SETTINGS_COLUMN: settings, **value,
             "source": row["source"], DAGSTER_RUN_ID: dagster_run_id}
            for row, value in zip(rows, values)]
