"""Slice definitions from `slices.yaml`, validated on load."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from dlk_assets.retrieval.filters import parse_filter

SOURCES = ("coco", "videos")
SLICE_MODES = ("maxsim",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class SliceSpec:
    """A named retrieval: what to search, how, and how many rows to keep."""

    name: str
    source: str
    query: str
    mode: str = "maxsim"
    k: int = 10
    where: str | None = None


def default_slices_path() -> Path:
    return Path(str(resources.files("dlk_assets") / "defs" / "slices" / "slices.yaml"))


def load_slices(path: str | Path | None = None) -> dict[str, SliceSpec]:
    """Parse and validate the slices file; errors name the slice and field."""
    path = Path(path) if path else default_slices_path()
    document = yaml.safe_load(path.read_text()) or {}
    specs = {}
    for name, body in (document.get("slices") or {}).items():
        where = f"{path}: slice {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: names use lowercase letters, digits, '-' and '_'")
        if not isinstance(body, dict):
            raise ValueError(f"{where}: expected a mapping of fields")  # noqa: TRY004 (a bad file, not a bad call)
        unknown = set(body) - {"source", "query", "mode", "k", "where"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        spec = SliceSpec(name=name, source=body.get("source", ""), query=str(body.get("query", "")),
                         mode=body.get("mode", "maxsim"), k=body.get("k", 10), where=body.get("where"))
        if spec.source not in SOURCES:
            raise ValueError(f"{where}: field 'source' must be one of {SOURCES}, got {spec.source!r}")
        if spec.mode not in SLICE_MODES:
            raise ValueError(f"{where}: field 'mode' must be one of {SLICE_MODES}, got {spec.mode!r}")
        if not spec.query.strip():
            raise ValueError(f"{where}: field 'query' is empty")
        if not isinstance(spec.k, int) or not 1 <= spec.k <= 10_000:
            raise ValueError(f"{where}: field 'k' must be an integer from 1 to 10000, got {spec.k!r}")
        parse_filter(spec.where)
        specs[name] = spec
    return specs
