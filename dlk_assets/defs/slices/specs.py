"""Slice definitions from `slices.yaml`, validated on load."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from dlk_assets.defs.slices.relevance import Relevance
from dlk_assets.retrieval.filters import parse_filter

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELDS = {"source", "query", "mode", "k", "where", "min_score", "min_relative_score", "dedupe", "dedupe_similarity"}


@dataclass(frozen=True)
class SliceSpec:
    """A named retrieval: what to search, how, how many rows to keep at most, and which of them count."""

    name: str
    source: str
    query: str
    mode: str | None = None  # None: the source's default mode
    k: int = 10
    where: str | None = None
    # Keep rules (see relevance.py); unset, the slice is its top k as it always was.
    min_score: float | None = None
    min_relative_score: float | None = None
    dedupe: bool = False
    dedupe_similarity: float | None = None

    @property
    def relevance(self) -> Relevance:
        """The rules that decide which of the top hits the slice keeps."""
        return Relevance(min_score=self.min_score, min_relative_score=self.min_relative_score, dedupe=self.dedupe,
                         dedupe_similarity=self.dedupe_similarity)


def _number(value: object) -> bool:
    # YAML reads `true` as a bool, which Python would also accept as the number 1.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(value: object) -> bool:
    return _number(value) and 0 < value <= 1


def _check_relevance(spec: SliceSpec, where: str) -> None:
    """The keep rules' types and ranges; errors name the slice and the field."""
    if spec.min_score is not None and not _number(spec.min_score):
        raise ValueError(f"{where}: field 'min_score' must be a number (on the search mode's score scale), got {spec.min_score!r}")
    if spec.min_relative_score is not None and not _fraction(spec.min_relative_score):
        raise ValueError(f"{where}: field 'min_relative_score' must be a number above 0 and at most 1 (a fraction of the "
                         f"top hit's score), got {spec.min_relative_score!r}")
    if not isinstance(spec.dedupe, bool):
        raise ValueError(f"{where}: field 'dedupe' must be true or false, got {spec.dedupe!r}")  # noqa: TRY004 (a bad file, not a bad call)
    if spec.dedupe_similarity is not None:
        if not _fraction(spec.dedupe_similarity):
            raise ValueError(f"{where}: field 'dedupe_similarity' must be a cosine above 0 and at most 1, got {spec.dedupe_similarity!r}")
        if not spec.dedupe:
            raise ValueError(f"{where}: field 'dedupe_similarity' needs 'dedupe: true'")


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
                         mode=body.get("mode"), k=body.get("k", 10), where=body.get("where"),
                         min_score=body.get("min_score"), min_relative_score=body.get("min_relative_score"),
                         dedupe=body.get("dedupe", False), dedupe_similarity=body.get("dedupe_similarity"))
        if sources is not None:
            if spec.source not in sources:
                raise ValueError(f"{where}: field 'source' must be one of {sorted(sources)}, got {spec.source!r}")
            if spec.mode is not None and spec.mode not in sources[spec.source]:
                raise ValueError(f"{where}: field 'mode' must be one of {sources[spec.source]} for {spec.source}, got {spec.mode!r}")
        if not spec.query.strip():
            raise ValueError(f"{where}: field 'query' is empty")
        if isinstance(spec.k, bool) or not isinstance(spec.k, int) or not 1 <= spec.k <= 10_000:
            raise ValueError(f"{where}: field 'k' must be an integer from 1 to 10000, got {spec.k!r}")
        _check_relevance(spec, where)
        parse_filter(spec.where)
        specs[name] = spec
    return specs
