"""The small description from which every source's embedding, index, check, cutover and slice
definitions are built. A new source is a reader, a row builder and one of these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import dagster as dg
from PIL import Image

from dlk_assets.defs.pipeline.hits import HitColumn
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.schema import (
    ENCODER_FINGERPRINT,
    PARTITION,
    Column,
    Kind,
    TableSchema,
    lineage_columns,
    model_slug,
)
from dlk_assets.lake.tables import Table
from dlk_assets.models.probes import ProbeSet, load_probes, probes_path
from dlk_assets.retrieval.filters import Filter
from dlk_assets.retrieval.requests import Hit

SETTINGS_COLUMN = "embedding_settings"


@dataclass(frozen=True)
class Embedder:
    """How a source's rows become vectors.

    `embed(rows, encoder, files, settings)` returns, per row, the values of `columns(encoder)`; it
    reads any bytes back from the file store by `file_id` (the same path training uses).
    `settings` are the source's knobs that change vectors (e.g. frames per video chunk); they are
    stored with every vector, so changing one re-embeds.
    """

    columns: Callable[[Encoder], tuple[Column, ...]]
    embed: Callable[[list[dict[str, Any]], Encoder, FileStore, dict[str, Any]], list[dict[str, Any]]]
    unit: str = "items"  # what progress counts: images, chunks, texts
    batch_size: int = 32
    settings_resource: str | None = None
    settings: Callable[[Any], dict[str, Any]] = field(default=lambda resource: {})
    # Markdown a person would rather look at than numbers (labels per image, ...), from written rows.
    preview: Callable[[list[dict[str, Any]]], str] | None = None


@dataclass(frozen=True)
class SearchSpec:
    """How a query runs on the source: its modes (the first is the default), the runner and the display."""

    modes: tuple[str, ...]
    # (table, encoder, query, mode, k, where, select) -> hits
    run: Callable[[Table, Encoder, str, str, int, str | None, tuple[str, ...]], list[Hit]]
    select: tuple[str, ...]  # what a hit carries (columns the table lacks are left out)
    columns: tuple[HitColumn, ...]  # how hits print
    # The mode that compares two encoders on the probes: one that depends only on the vectors (memory's
    # hybrid mode mixes in BM25, which is the same for every encoder).
    probe_mode: str | None = None  # None: the default mode


@dataclass(frozen=True)
class SliceExport:
    """What a training slice copies from each hit, how exported files are named, and a preview."""

    item_fields: tuple[str, ...]
    item_name: Callable[[dict[str, Any]], str]
    preview: Callable[[FileStore, str], Image.Image]  # a picture of a stored file, by file_id


@dataclass(frozen=True)
class Lineage:
    """How a user names an item, and where it entered the lake."""

    item_help: str  # what `dlk lineage <source> <item>` takes, e.g. "an image_id"
    rows_for: Callable[[str], Filter]  # the rows-table rows an item names
    origin_table: TableSchema  # where the source item entered (its file row)
    origin_key: Callable[[dict[str, Any]], str]  # the origin row key of a row
    describe_origin: Callable[[dict[str, Any]], dict[str, Any]]  # dataset, path or position, ...
    # The item a search hit names (what `dlk lineage` and the service's lineage link take); None: no link.
    item_of: Callable[[dict[str, Any]], str] | None = None


@dataclass(frozen=True)
class SourceSpec:
    """One source, described once: its rows, how a row becomes vectors, its index, probes and slices."""

    name: str  # what the CLI, the registry and slices.yaml call it
    modality: str  # what its encoders embed: image or text
    group: str
    asset_prefix: str  # <prefix>_index, <prefix>_active_model, ...
    partitions: dg.DynamicPartitionsDefinition
    # What the source's sensor runs per new partition (reads the source, writes files and first rows) ...
    ingest_assets: tuple[dg.AssetsDefinition, ...]
    ingest_job: str
    sensors: tuple[dg.SensorDefinition, ...]
    register_all: Callable[[dg.DagsterInstance, dict[str, Any]], list[str]]  # every partition the source holds now
    rows_table: TableSchema  # the rows that get embedded
    # ... and what follows from those rows by automation (lake to lake, a whole partition range per run).
    derived_assets: tuple[dg.AssetsDefinition, ...]
    equal_count_tables: tuple[TableSchema, ...]  # tables with as many rows per partition as rows_table
    embeddings_asset: str
    embeddings_description: str
    embeddings_table: str  # per-model tables are <this>__<model slug>
    # Rows-table columns copied next to the vectors (filters and results; TQL has no joins). A row whose
    # copied columns changed (its sha256, its text, ...) is embedded again.
    copied_columns: tuple[str, ...]
    embedder: Embedder
    indexes: tuple[tuple[str, str], ...]  # (column, index kind); the first is the vector index
    search: SearchSpec
    lineage: Lineage
    slices: SliceExport | None = None
    presence_tables: tuple[TableSchema, ...] = ()  # every partition stored there must have rows (a video, its chunks)
    # The copied columns that alone decide a row's vectors (e.g. a content hash). With them, a stored vector
    # made from the same values by the same encoder serves any row of the partition, whatever its key or
    # other fields: a document whose chunks shifted or whose title changed embeds only new text.
    embedded_columns: tuple[str, ...] = ()

    @property
    def rows_asset(self) -> dg.AssetKey:
        """The asset that writes the rows to embed (the last ingest or derived asset)."""
        return (*self.ingest_assets, *self.derived_assets)[-1].key

    def asset_name(self, role: str) -> str:
        """`coco_index`, `coco_active_model`, ...: the name of the source's asset or check for `role`."""
        return f"{self.asset_prefix}_{role}"

    def embeddings_schema(self, encoder: Encoder) -> TableSchema:
        """The encoder's own table: copied row columns, the vectors, and which encoder and settings made them."""
        copied = tuple(self.rows_table.column(name) for name in self.copied_columns)
        return TableSchema(self.embeddings_table_name(encoder.fingerprint), (
            *copied, Column(ENCODER_FINGERPRINT, Kind.TEXT), Column(SETTINGS_COLUMN, Kind.JSON),
            *self.embedder.columns(encoder), *lineage_columns(),
        ))

    def embeddings_table_name(self, fingerprint: str) -> str:
        """`<embeddings_table>__<model slug>`: the table of one encoder's vectors."""
        return f"{self.embeddings_table}__{model_slug(fingerprint)}"

    @property
    def vector_column(self) -> str:
        """The column the first (vector) index is on."""
        return self.indexes[0][0]

    @cached_property
    def probes(self) -> ProbeSet:
        """Queries with the items they must find (`dlk_assets/data/probes/<name>.yaml`)."""
        return load_probes(probes_path(self.name))

    def select(self, schema: TableSchema) -> tuple[str, ...]:
        """What a hit carries from this table: the search columns it has, plus what the probes look at."""
        wanted: Sequence[str] = (*self.search.select, *sorted(self.probes.fields), PARTITION)
        return tuple(dict.fromkeys(name for name in wanted if name in schema.column_names))
