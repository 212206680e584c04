"""The version the last writer of a table left, so a long-lived reader refreshes only when it changed.

A reader must see what other processes committed, so every read used to start with Deep Lake's
`refresh()`, and that grows with the table's history: a vector dataset filled by 1000 batch commits
took ~40 ms per refresh, most of a search's time in `dlk serve`. Every write in this project holds
the table's lock (`locks.py`), so the writer records, beside the lock file, the version it left; a
reader whose dataset is already at that version skips the refresh (a small file read instead), for
at most a second after its last refresh: a writer that went around the lock is seen within that.

While a write is under way the record says `writing`, and it stays so when a writer fails or is
killed: readers then refresh every time, as before, until the next write completes. Object storage
has no such record (its locks are per machine, and writers elsewhere could not update it), so its
readers always refresh.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

WRITING = "writing"


def read_head(path: Path | None) -> str | None:
    """The recorded version, `WRITING`, or None when there is no record."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _write_head(path: Path, text: str) -> None:
    # A reader sees the old record or the new one, never half of one.
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


@contextmanager
def announced_write(path: Path | None, version_after: Callable[[], str | None]) -> Iterator[None]:
    """Record `WRITING` for the block (the caller holds the table's lock), then the version the block
    left, as `version_after` gives it. A block that raises, or leaves no known version, leaves `WRITING`."""
    if path is None:
        yield
        return
    _write_head(path, WRITING)
    yield
    version = version_after()
    if version is not None:
        _write_head(path, version)
