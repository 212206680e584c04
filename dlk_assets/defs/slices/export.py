"""Run a slice's retrieval on a pinned table version and export its files with a manifest."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dlk_assets.defs.pipeline.serving import search_table
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.slices.relevance import Candidate, Selection, pooled_vector, select
from dlk_assets.defs.slices.specs import SliceSpec
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore, sha256_hex
from dlk_assets.lake.tables import Table
from dlk_assets.retrieval.requests import MAX_K, Hit
from dlk_assets.staged_folder import staged_folder

MANIFEST = "manifest.json"
# Near-duplicates are judged on the encoder's image features where the table has them (a visual
# fingerprint: re-encoded, resized or flipped copies of a sample photo stay above 0.91 while distinct
# photos stay under 0.3), else on the pooled embedding bag (video chunks: their frames' vectors).
SIMILARITY_COLUMNS = ("image_features", "embedding")


def slice_tag(spec: SliceSpec, version: str) -> str:
    """The Deep Lake tag that pins the table version a slice read."""
    return f"slice__{spec.name}__{version}"


def dedupe_vectors(table: Table, row_keys: list[str]) -> dict[str, np.ndarray]:
    """Per row key, the unit vector near-duplicates are compared on (see `SIMILARITY_COLUMNS`)."""
    names = table.schema.column_names
    column = next((c for c in SIMILARITY_COLUMNS if c in names), None)
    if column is None:
        raise ValueError(f"table {table.schema.name} has none of {SIMILARITY_COLUMNS} to compare for dedupe_similarity")
    rows = table.read_rows(row_keys, (column,))
    return {key: pooled_vector(row[column]) for key, row in rows.items()}


def _candidates(hits: list[Hit], vectors: dict[str, np.ndarray]) -> list[Candidate]:
    return [Candidate(rank=h.rank, row_key=h.row_key, score=h.score, sha256=h.values["sha256"], vector=vectors.get(h.row_key))
            for h in hits]


def select_hits(spec: SliceSpec, source: SourceSpec, table: Table, encoder: Encoder) -> tuple[list[Hit], Selection]:
    """Search `table` for the slice and apply its keep rules (`relevance.select`).

    Without `dedupe` this is one search for `k` hits. With it, a duplicate frees a place, so while the
    slice is short only because of duplicates the search asks for twice as many hits (up to 10,000)
    and selects again: a slice of `k` holds `k` distinct items whenever the table has them.
    """
    rules = spec.relevance
    wanted = spec.k
    while True:
        hits = search_table(source, table, encoder, spec.query, spec.mode, wanted, spec.where)
        vectors = dedupe_vectors(table, [h.row_key for h in hits]) if rules.dedupe_similarity and hits else {}
        try:
            selection = select(_candidates(hits, vectors), rules, spec.k)
        except ValueError as error:
            raise ValueError(f"slice {spec.name!r}: {error}") from error
        if not selection.wants_more or len(hits) < wanted or wanted >= MAX_K:
            return hits, selection
        wanted = min(MAX_K, wanted * 2)


def _item_record(hit: Hit, fields: dict[str, Any]) -> dict[str, Any]:
    return {"rank": hit.rank, "row_key": hit.row_key, "partition": hit.values["partition"], "score": hit.score,
            **fields, "file_id": hit.values["file_id"], "sha256": hit.values["sha256"]}


def export_slice(spec: SliceSpec, source: SourceSpec, table: Table, encoder: Encoder, store: FileStore,
                 out_dir: Path) -> dict[str, Any]:
    """Tag the table version, search that pinned version, copy the kept hits' files and write the manifest.

    Each item records its row key, partition and source item fields, so it can be traced back
    (`dlk lineage`), and `why` it was kept (score, `relative_to_top`, the rules it passed). The
    manifest's `cut` lists the hits the slice's rules dropped, with the same identity fields, a
    `reason` (`below_min_score`, `below_relative_cutoff`, `duplicate`) and a `detail`; items keep
    their search rank, so a cut leaves a gap. The folder is built beside the target and swapped in,
    so a killed run never leaves a half slice.
    """
    export = source.slices
    if export is None:
        raise ValueError(f"source {source.name!r} has no files to export as a slice")
    version = table.version
    tag = slice_tag(spec, version)
    table.tag_version(tag)
    pinned = table.open_tag(tag)
    hits, selection = select_hits(spec, source, pinned, encoder)
    by_key = {hit.row_key: hit for hit in hits}
    items = []
    with staged_folder(out_dir) as staging:
        for decision in selection.kept:
            hit = by_key[decision.candidate.row_key]
            data = store.get(hit.values["file_id"])
            if sha256_hex(data) != hit.values["sha256"]:
                raise OSError(f"file {hit.values['file_id']} of {hit.row_key} does not match its recorded sha256")
            extension = store.stat(hit.values["file_id"]).filename.rsplit(".", 1)[-1]
            fields = {name: hit.values[name] for name in export.item_fields}
            filename = f"{hit.rank:04d}_{export.item_name(fields)}.{extension}"
            (staging / filename).write_bytes(data)
            items.append({**_item_record(hit, fields), "file": filename, "why": decision.why})
        cut = []
        for decision in selection.cut:  # no file is copied: the record says which item it was and why it is out
            hit = by_key[decision.candidate.row_key]
            cut.append({**_item_record(hit, {name: hit.values[name] for name in export.item_fields}), **decision.why})
        manifest = {
            "slice": asdict(spec), "mode": spec.mode or source.search.modes[0], "encoder": encoder.name,
            "encoder_fingerprint": encoder.fingerprint, "table": table.schema.name, "table_version": version,
            "table_tag": tag, "items": items, "cut": cut, "candidates": len(hits), "top_score": selection.top_score,
            "rules": spec.relevance.describe(),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
