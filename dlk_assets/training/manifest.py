"""A slice's manifest as training reads it: the pinned table and encoder, and the ranked items.

Only the fields the export has always written are relied on; anything else in the file (newer
fields) is carried along untouched in `raw`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlk_assets.defs.pipeline.slices import SLICES_FOLDER
from dlk_assets.defs.slices.export import MANIFEST
from dlk_assets.resources import dagster_home

TOP_FIELDS = ("slice", "encoder", "encoder_fingerprint", "table", "table_version", "table_tag", "items")
ITEM_FIELDS = ("rank", "row_key", "partition", "file_id", "sha256", "file")


class SliceManifestError(ValueError):
    """A manifest that is missing or lacks what training needs."""


@dataclass(frozen=True)
class SliceManifest:
    """One exported slice: where its manifest lives and what it pins."""

    path: Path
    name: str
    source: str
    encoder: str
    encoder_fingerprint: str
    table: str
    table_version: str
    table_tag: str
    items: tuple[dict[str, Any], ...]
    raw: dict[str, Any]

    @property
    def folder(self) -> Path:
        """The slice's folder (the manifest and the exported item files)."""
        return self.path.parent


def slice_manifest_path(name: str, home: str | Path | None = None) -> Path:
    """`$DAGSTER_HOME/slices/<name>/manifest.json` (or under `home`)."""
    return Path(home or dagster_home()) / SLICES_FOLDER / name / MANIFEST


def load_manifest(path: str | Path) -> SliceManifest:
    """Read and check a manifest; errors name the file and the missing field (or item)."""
    path = Path(path)
    if not path.is_file():
        raise SliceManifestError(f"no slice manifest at {path}: materialize the source's `<prefix>_slices` asset "
                                 "(e.g. `dlk demo`) for this slice first")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SliceManifestError(f"{path} is not valid JSON: {exc}") from exc
    missing = [field for field in TOP_FIELDS if field not in raw]
    if missing:
        raise SliceManifestError(f"{path} lacks field(s) {', '.join(missing)}")
    spec = raw["slice"]
    if not isinstance(spec, dict) or not spec.get("name") or not spec.get("source"):
        raise SliceManifestError(f"{path}: field 'slice' must name the slice and its source")
    for position, item in enumerate(raw["items"]):
        lacking = [field for field in ITEM_FIELDS if field not in item]
        if lacking:
            raise SliceManifestError(f"{path}: item {position} ({item.get('row_key', '?')}) lacks {', '.join(lacking)}")
    return SliceManifest(path=path, name=str(spec["name"]), source=str(spec["source"]), encoder=str(raw["encoder"]),
                         encoder_fingerprint=str(raw["encoder_fingerprint"]), table=str(raw["table"]),
                         table_version=str(raw["table_version"]), table_tag=str(raw["table_tag"]),
                         items=tuple(raw["items"]), raw=raw)
