"""Data versions computed from what was stored where data enters the lake (files, chunks, traces), so
changed bytes mark downstream stale and equal bytes do not. Assets derived from those keep Dagster's
own data versions (code version + upstream versions), which then follow the content too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import numpy as np

from dlk_assets.lake.schema import DAGSTER_RUN_ID, ROW_KEY

# A run id differs on every run, so it never takes part in a data version.
_VOLATILE = frozenset({DAGSTER_RUN_ID})


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot version a {type(value).__name__}")


def rows_version(rows: Iterable[Mapping[str, Any]], fields: Iterable[str] | None = None) -> dg.DataVersion:
    """A digest of rows in key order: every field but the run id, or just `fields` when given."""
    digest = hashlib.sha256()
    chosen = tuple(fields) if fields is not None else None
    for row in sorted(rows, key=lambda r: r[ROW_KEY]):
        names = chosen if chosen is not None else sorted(k for k in row if k not in _VOLATILE)
        digest.update(json.dumps([row[ROW_KEY], [row[n] for n in names]], default=_plain, sort_keys=True).encode())
        digest.update(b"\n")
    return dg.DataVersion(digest.hexdigest()[:24])


def combined_version(parts: Iterable[str]) -> dg.DataVersion:
    """One version from several (e.g. the partitions of a multi-partition run, or tables and their versions)."""
    return dg.DataVersion(hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24])

