"""Follow one item through the lake: source item -> file -> rows -> embeddings per model -> slices."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlk_assets.defs.pipeline.serving import (
    model_tables,
    open_existing,
    served_table_name,
)
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.lake.schema import DAGSTER_RUN_ID, ENCODER_FINGERPRINT, Column, Kind
from dlk_assets.lake.tables import Lake
from dlk_assets.models.registry import ModelRegistry

_MODEL_COLUMNS = (Column(ENCODER_FINGERPRINT, Kind.TEXT), Column(DAGSTER_RUN_ID, Kind.TEXT))


@dataclass(frozen=True)
class EmbeddingLink:
    """Where one model's vector of the item lives."""

    table: str
    encoder_fingerprint: str
    table_version: str
    dagster_run_id: str
    role: str  # active, target, active+target or retired


@dataclass(frozen=True)
class SliceLink:
    """An exported slice that lists the item, with its rank and the table version it was drawn from."""
    slice: str
    rank: int
    score: float | None
    table: str
    table_version: str
    manifest: str  # relative to $DAGSTER_HOME


@dataclass
class ItemLineage:
    """The whole chain for one row of a source."""

    row_key: str
    partition: str
    origin: dict[str, Any]
    file: dict[str, str] | None
    rows: list[tuple[str, str, str]]  # (table, row key, dagster_run_id): the origin row, then the embedded row
    embeddings: list[EmbeddingLink] = field(default_factory=list)
    slices: list[SliceLink] = field(default_factory=list)


def _roles(spec: SourceSpec, registry: ModelRegistry, lake: Lake) -> dict[str, str]:
    roles: dict[str, list[str]] = {}
    target = spec.embeddings_table_name(registry.target(spec).fingerprint)
    for role, table in (("active", served_table_name(spec, lake, registry)), ("target", target)):
        roles.setdefault(table, []).append(role)
    return {table: "+".join(names) for table, names in roles.items()}


def slice_links(slices_root: Path, row_keys: set[str]) -> dict[str, list[SliceLink]]:
    """Per row key, the exported slices whose manifest lists it."""
    links: dict[str, list[SliceLink]] = {}
    for manifest_path in sorted(slices_root.glob("*/manifest.json")) if slices_root.is_dir() else []:
        manifest = json.loads(manifest_path.read_text())
        for item in manifest.get("items", []):
            if item.get("row_key") in row_keys:
                links.setdefault(item["row_key"], []).append(SliceLink(
                    manifest_path.parent.name, item["rank"], item.get("score"), manifest["table"], manifest["table_version"],
                    f"{slices_root.name}/{manifest_path.parent.name}/{manifest_path.name}"))
    return links


def trace_item(spec: SourceSpec, lake: Lake, registry: ModelRegistry, item: str, slices_root: Path) -> list[ItemLineage]:
    """The lineage of every row the item names (one image, one chunk, every episode of a run)."""
    if not lake.exists(spec.rows_table.name):
        raise LookupError(f"{spec.name} has no rows yet: materialize {spec.rows_asset.to_user_string()} first")
    rows = lake.table(spec.rows_table).read_where(spec.lineage.rows_for(item))
    if not rows:
        raise LookupError(f"no {spec.name} item {item!r} in {spec.rows_table.name} ({spec.lineage.item_help})")
    keys = [row["row_key"] for row in rows]
    origins = lake.table(spec.lineage.origin_table).read_rows([spec.lineage.origin_key(row) for row in rows])
    roles = _roles(spec, registry, lake)
    models = {name: open_existing(lake, name, _MODEL_COLUMNS) for name in model_tables(spec, lake)}
    vectors = {name: table.read_rows(keys, (ENCODER_FINGERPRINT, DAGSTER_RUN_ID)) for name, table in models.items()}
    slices = slice_links(slices_root, set(keys))
    chain = []
    for row in rows:
        origin = origins.get(spec.lineage.origin_key(row))
        link = ItemLineage(
            row["row_key"], row["partition"], spec.lineage.describe_origin(origin) if origin else {"missing": "no origin row"},
            {"file_id": row["file_id"], "sha256": row["sha256"]} if "file_id" in row else None,
            [(spec.lineage.origin_table.name, spec.lineage.origin_key(row), origin[DAGSTER_RUN_ID] if origin else "-"),
             (spec.rows_table.name, row["row_key"], row[DAGSTER_RUN_ID])],
        )
        for name, found in vectors.items():
            if row["row_key"] in found:
                stored = found[row["row_key"]]
                link.embeddings.append(EmbeddingLink(name, stored[ENCODER_FINGERPRINT], models[name].version,
                                                     stored[DAGSTER_RUN_ID], roles.get(name, "retired")))
        link.slices = slices.get(row["row_key"], [])
        chain.append(link)
    return chain


def format_lineage(spec: SourceSpec, chain: list[ItemLineage]) -> str:
    """The chain as an indented text block per row."""
    blocks = []
    for link in chain:
        lines = [f"{spec.name} {link.row_key}  (partition {link.partition})",
                 "  source item  " + ", ".join(f"{k} {v}" for k, v in link.origin.items()),
                 "  file         " + (f"file_id {link.file['file_id']}  sha256 {link.file['sha256']}" if link.file else
                                      "none (stored as rows)")]
        lines += [f"  {'rows' if i == 0 else '':11}  {table}  {key}  dagster run {run_id}" for i, (table, key, run_id) in enumerate(link.rows)]
        lines += [f"  {'embeddings' if i == 0 else '':11}  {e.encoder_fingerprint}  [{e.role}]  {e.table}  table version "
                  f"{e.table_version}  dagster run {e.dagster_run_id}" for i, e in enumerate(link.embeddings)] or \
                 ["  embeddings   none yet"]
        lines += [f"  {'slices' if i == 0 else '':11}  {s.slice}  rank {s.rank}  score "
                  f"{'-' if s.score is None else f'{s.score:.4f}'}  {s.table} @ {s.table_version}  ({s.manifest})"
                  for i, s in enumerate(link.slices)] or ["  slices       none"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
