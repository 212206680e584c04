"""Probe sets: queries with the items they must find, shipped as data, to compare models on one source.

A probe file (`dlk_assets/data/probes/<source>.yaml`):

    k: 3                     # recall is measured in the top k
    queries:
      - query: "a cat"
        expect: {image_id: 900002}      # a hit matches when every field matches
        relevant: 1                     # how many stored items match (default 1)
      - query: "fix authentication bug"
        expect: {trial_name: {prefix: auth_refresh}}
      - query: "a rocket on a launch platform"
        expect: {video_id: scene_001__camera_0002, start_s: {le: 6.0}, end_s: {gt: 6.0}}

A field matches a plain value by equality, or a mapping of tests: prefix, lt, le, gt, ge. A field
`column.key` reads a key of a JSON column (`metadata.path: cats.txt`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dlk_assets.retrieval.requests import Hit

_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "prefix": lambda value, wanted: isinstance(value, str) and value.startswith(str(wanted)),
    "lt": lambda value, wanted: value < wanted,
    "le": lambda value, wanted: value <= wanted,
    "gt": lambda value, wanted: value > wanted,
    "ge": lambda value, wanted: value >= wanted,
}


@dataclass(frozen=True)
class Probe:
    """A query and what a good answer contains."""

    query: str
    expect: dict[str, Any]
    relevant: int = 1
    kind: str = ""


@dataclass(frozen=True)
class ProbeSet:
    """The probes of one source, and the depth at which recall is measured."""

    k: int
    probes: tuple[Probe, ...]

    @property
    def fields(self) -> set[str]:
        """The hit fields the expectations look at (a search must return them): `metadata` for `metadata.path`."""
        return {name.partition(".")[0] for probe in self.probes for name in probe.expect}


@dataclass(frozen=True)
class ProbeResult:
    """One query's recall and the matching hits it found."""
    query: str
    recall: float
    found: list[str]  # the matching hits' row keys, in rank order


@dataclass(frozen=True)
class ProbeScore:
    """Mean recall@k over a probe set, and each query's result."""

    k: int
    recall: float
    results: tuple[ProbeResult, ...]


def probes_path(source: str) -> Path:
    """The probe file shipped for a source."""
    return Path(str(resources.files("dlk_assets") / "data" / "probes" / f"{source}.yaml"))


def _check_expect(expect: Any, where: str) -> dict[str, Any]:
    if not isinstance(expect, dict) or not expect:
        raise ValueError(f"{where}.expect: expected a non-empty mapping of fields")
    for name, wanted in expect.items():
        if isinstance(wanted, dict):
            unknown = set(wanted) - set(_TESTS)
            if unknown or not wanted:
                raise ValueError(f"{where}.expect.{name}: tests must be among {sorted(_TESTS)}, got {sorted(wanted)}")
    return expect


def load_probes(path: str | Path) -> ProbeSet:
    """Read and validate a probe file; errors name the query and field."""
    path = Path(path)
    document = yaml.safe_load(path.read_text()) or {}
    k = document.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
        raise ValueError(f"{path}: k must be an integer from 1 to 100, got {k!r}")
    probes = []
    for index, body in enumerate(document.get("queries") or []):
        where = f"{path}: queries[{index}]"
        if not isinstance(body, dict) or not str(body.get("query", "")).strip():
            raise ValueError(f"{where}: needs a non-empty 'query'")
        relevant = body.get("relevant", 1)
        if isinstance(relevant, bool) or not isinstance(relevant, int) or relevant < 1:
            raise ValueError(f"{where}.relevant: expected a positive integer, got {relevant!r}")
        probes.append(Probe(str(body["query"]), _check_expect(body.get("expect"), where), relevant, str(body.get("kind", ""))))
    if not probes:
        raise ValueError(f"{path}: no queries")
    return ProbeSet(k, tuple(probes))


_MISSING = object()


def _field(values: dict[str, Any], name: str) -> Any:
    """A hit's value for `name`, or for `column.key` the key inside that JSON column; `_MISSING` if absent."""
    column, _, key = name.partition(".")
    value = values.get(column, _MISSING)
    if key and value is not _MISSING:
        value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
    return value


def matches(values: dict[str, Any], expect: dict[str, Any]) -> bool:
    """Whether a hit's values meet every expected field."""
    for name, wanted in expect.items():
        value = _field(values, name)
        if value is _MISSING:
            return False
        if isinstance(wanted, dict):
            if not all(_TESTS[test](value, bound) for test, bound in wanted.items()):
                return False
        elif value != wanted:
            return False
    return True


def score_probes(probes: ProbeSet, search: Callable[[str, int], Sequence[Hit]]) -> ProbeScore:
    """Run every probe through `search(query, k)`; recall = matching hits / min(k, relevant items)."""
    results = []
    for probe in probes.probes:
        hits = search(probe.query, probes.k)
        found = [hit.row_key for hit in hits if matches(hit.values, probe.expect)]
        results.append(ProbeResult(probe.query, min(1.0, len(found) / min(probes.k, probe.relevant)), found))
    recall = sum(r.recall for r in results) / len(results)
    return ProbeScore(probes.k, recall, tuple(results))
