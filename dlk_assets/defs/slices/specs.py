"""Slice definitions from `slices.yaml`, validated on load."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from dlk_assets.retrieval.filters import parse_filter

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELDS = {"source", "query", "mode", "k", "where"}


@dataclass(frozen=True)
class SliceSpec:
    """A named retrieval: what to search, how, and how many rows to keep."""

    name: str
    source: str
    query: str
    mode: str | None = None  # None: the source's default mode
    k: int = 10
    where: str | None = None


def default_slices_path() -> Path:
    return Path(str(resources.files("dlk_assets") / "defs" / "slices" / "slices.yaml"))


def load_slices(path: str | Path | None = None, sources: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, SliceSpec]:
    """Parse and validate the slices file; errors name the slice and field.

    `sources` maps each source that can be sliced to its search modes; slices naming another source
    or mode are refused.
    """
    path = Path(path) if path else default_slices_path()
    document = yaml.safe_load(path.read_text()) or {}
    specs = {}
    for name, body in (document.get("slices") or {}).items():
        where = f"{path}: slice {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: names use lowercase letters, digits, '-' and '_'")
        if not isinstance(body, dict):
            raise ValueError(f"{where}: expected a mapping of fields")  # noqa: TRY004 (a bad file, not a bad call)
        unknown = set(body) - _FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        spec = SliceSpec(name=name, source=str(body.get("source", "")), query=str(body.get("query", "")),
                         mode=body.get("mode"), k=body.get("k", 10), where=body.get("where"))
        if sources is not None:
            if spec.source not in sources:
                raise ValueError(f"{where}: field 'source' must be one of {sorted(sources)}, got {spec.source!r}")
            if spec.mode is not None and spec.mode not in sources[spec.source]:
                raise ValueError(f"{where}: field 'mode' must be one of {sources[spec.source]} for {spec.source}, got {spec.mode!r}")
        if not spec.query.strip():
            raise ValueError(f"{where}: field 'query' is empty")
        if isinstance(spec.k, bool) or not isinstance(spec.k, int) or not 1 <= spec.k <= 10_000:
            raise ValueError(f"{where}: field 'k' must be an integer from 1 to 10000, got {spec.k!r}")
        parse_filter(spec.where)
        specs[name] = spec
    return specs
