"""Run a slice's retrieval on a pinned table version and export its files with a manifest."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dlk_assets.defs.pipeline.serving import search_table
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.slices.specs import SliceSpec
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore, sha256_hex
from dlk_assets.lake.tables import Table

MANIFEST = "manifest.json"


def slice_tag(spec: SliceSpec, version: str) -> str:
    """The Deep Lake tag that pins the table version a slice read."""
    return f"slice__{spec.name}__{version}"


def export_slice(spec: SliceSpec, source: SourceSpec, table: Table, encoder: Encoder, store: FileStore,
                 out_dir: Path) -> dict[str, Any]:
    """Tag the table version, search that pinned version, copy the hits' files and write the manifest.

    Each item records its row key, partition and source item fields, so it can be traced back
    (`dlk lineage`). The folder is built beside the target and swapped in, so a killed run never
    leaves a half slice.
    """
    export = source.slices
    if export is None:
        raise ValueError(f"source {source.name!r} has no files to export as a slice")
    version = table.version
    tag = slice_tag(spec, version)
    table.tag_version(tag)
    pinned = table.open_tag(tag)
    hits = search_table(source, pinned, encoder, spec.query, spec.mode, spec.k, spec.where)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    items = []
    try:
        for hit in hits:
            data = store.get(hit.values["file_id"])
            if sha256_hex(data) != hit.values["sha256"]:
                raise OSError(f"file {hit.values['file_id']} of {hit.row_key} does not match its recorded sha256")
            extension = store.stat(hit.values["file_id"]).filename.rsplit(".", 1)[-1]
            fields = {name: hit.values[name] for name in export.item_fields}
            filename = f"{hit.rank:04d}_{export.item_name(fields)}.{extension}"
            (staging / filename).write_bytes(data)
            items.append({
                "rank": hit.rank, "row_key": hit.row_key, "partition": hit.values["partition"], "score": hit.score,
                **fields, "file_id": hit.values["file_id"], "sha256": hit.values["sha256"], "file": filename,
            })
        manifest = {
            "slice": asdict(spec), "mode": spec.mode or source.search.modes[0], "encoder": encoder.name,
            "encoder_fingerprint": encoder.fingerprint, "table": table.schema.name, "table_version": version,
            "table_tag": tag, "items": items,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        backup = out_dir.with_name(f".{out_dir.name}-old")
        shutil.rmtree(backup, ignore_errors=True)
        if out_dir.exists():
            os.replace(out_dir, backup)
        os.replace(staging, out_dir)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
