"""Where each stream position lives in a dataset's parquet files, and reading only those rows.

A streamed source is its parquet data files in order (what `datasets` resolves for a Hugging Face
dataset, a local folder in hub layout, or explicit files); stream position p is row p of their
concatenation — the order `load_dataset(..., streaming=True)` yields, so positions stay what they
were. The layout holds each file's row-group sizes, read from the file's footer once and kept in a
footer cache, so a shard reads the row groups that hold its rows and nothing before them, and
discovery reads footers only of files it has not seen.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARQUET_SUFFIX = ".parquet"


class SourceLayoutError(ValueError):
    """The source cannot be read by row ranges (no such split, files that are not parquet, ...)."""


def resolve_data_files(dataset: str | None, split: str, data_files: tuple[str, ...] = ()) -> list[str]:
    """The split's data files in stream order, resolved by `datasets` exactly as streaming does.

    `dataset` is a Hugging Face dataset id or a local folder in hub layout (`data/train-*.parquet`);
    `data_files` (paths, globs or URLs) replaces it. Hub files come back as `hf://` URLs pinned to a
    commit, which fsspec opens through `huggingface_hub`.
    """
    from datasets import load_dataset_builder

    if data_files:
        builder = load_dataset_builder("parquet", data_files={split: list(data_files)})
    else:
        builder = load_dataset_builder(dataset)
    resolved = builder.config.data_files or {}
    if split not in resolved:
        raise SourceLayoutError(f"{dataset or 'data_files'} has no split {split!r} (splits: {', '.join(resolved) or 'none'})")
    files = [str(file) for file in resolved[split]]
    other = [file for file in files if not file.split("?")[0].endswith(PARQUET_SUFFIX)]
    if other:
        raise SourceLayoutError(
            f"{dataset or 'data_files'} split {split!r} has data files that are not parquet (e.g. {other[0]}); shards are "
            "read by parquet row groups: use the dataset's parquet conversion (its refs/convert/parquet files as data_files)")
    return files


class FooterCache:
    """Row-group sizes per data file version, kept in one JSON file (or in memory when `path` is None).

    A file's version is its URL, size and whatever change marker its filesystem reports (mtime,
    ETag, blob id), so a rewritten file is read again. Saving is atomic (temp file + rename); two
    processes saving at once lose nothing but a cache entry, which is read again later.
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self._entries: dict[str, list[int]] = {}
        self._dirty = False
        if path is not None and path.exists():
            try:
                entries = json.loads(path.read_text())
            except (OSError, ValueError):
                entries = None
            if isinstance(entries, dict) and all(isinstance(rows, list) and all(type(n) is int and n >= 0 for n in rows)
                                                 for rows in entries.values()):
                self._entries = entries  # anything else is a damaged cache: only a cold one

    def get(self, version: str) -> list[int] | None:
        return self._entries.get(version)

    def put(self, version: str, row_group_rows: list[int]) -> None:
        self._entries[version] = row_group_rows
        self._dirty = True

    def save(self) -> None:
        """Write the entries out (a no-op when nothing new was read). A cache that cannot be written
        (a read-only instance folder) costs footer reads later, never a wrong row: it is not an error."""
        if self.path is None or not self._dirty:
            return
        temp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(handle, "w") as out:
                json.dump(self._entries, out, sort_keys=True)
            os.replace(temp, self.path)
        except OSError:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
            return
        self._dirty = False


_PINNED_HUB_URL = re.compile(r"^hf://datasets/[^@]+@[0-9a-f]{40}/")


def _file_version(url: str, filesystem, path: str) -> str:
    if _PINNED_HUB_URL.match(url):
        return url  # a hub file pinned to a commit never changes: no request needed to know its version
    info = filesystem.info(path)
    marker = next((info[name] for name in ("ETag", "etag", "blob_id", "mtime", "LastModified", "last_modified")
                   if info.get(name) is not None), "")
    return hashlib.sha256(json.dumps([url, info.get("size"), str(marker)]).encode()).hexdigest()


def _open_parquet(url: str):
    import fsspec
    import pyarrow.parquet as pq

    handle = fsspec.open(url, "rb").open()
    return pq.ParquetFile(handle), handle


def read_row_group_rows(url: str) -> list[int]:
    """Rows per row group of one parquet file, from its footer only."""
    parquet, handle = _open_parquet(url)
    with handle:
        return [parquet.metadata.row_group(group).num_rows for group in range(parquet.num_row_groups)]


@dataclass(frozen=True)
class ParquetPart:
    """One data file: where it starts in the stream and how its rows fall into row groups."""

    url: str
    first_position: int
    row_group_rows: tuple[int, ...]

    @property
    def rows(self) -> int:
        return sum(self.row_group_rows)

    def row_groups_for(self, first_row: int, stop_row: int) -> tuple[list[int], int]:
        """The row groups holding rows [first_row, stop_row), and where first_row sits in the first."""
        starts, total = [], 0
        for size in self.row_group_rows:
            starts.append(total)
            total += size
        first_group = bisect.bisect_right(starts, first_row) - 1
        last_group = bisect.bisect_right(starts, stop_row - 1) - 1
        return list(range(first_group, last_group + 1)), first_row - starts[first_group]

    def read(self, first_row: int, stop_row: int) -> list[dict[str, Any]]:
        """Rows [first_row, stop_row) of this file, reading only the row groups that hold them."""
        groups, offset = self.row_groups_for(first_row, stop_row)
        parquet, handle = _open_parquet(self.url)
        with handle:
            table = parquet.read_row_groups(groups)
        return table.slice(offset, stop_row - first_row).to_pylist()


@dataclass(frozen=True)
class ParquetLayout:
    """The data files of one split, in stream order, with their row counts."""

    parts: tuple[ParquetPart, ...]

    @property
    def total_rows(self) -> int:
        return self.parts[-1].first_position + self.parts[-1].rows if self.parts else 0

    def segments(self, start: int, count: int) -> list[tuple[ParquetPart, int, int]]:
        """(file, first row, stop row) for each file holding positions [start, start + count)."""
        stop = min(start + count, self.total_rows)
        firsts = [part.first_position for part in self.parts]
        found = []
        for part in self.parts[max(bisect.bisect_right(firsts, start) - 1, 0):]:
            if part.first_position >= stop:
                break
            first, last = max(start, part.first_position), min(stop, part.first_position + part.rows)
            if first < last:
                found.append((part, first - part.first_position, last - part.first_position))
        return found

    def iter_rows(self, start: int, count: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """(stream position, raw row) for positions [start, start + count) that exist."""
        for part, first_row, stop_row in self.segments(start, count):
            for offset, row in enumerate(part.read(first_row, stop_row)):
                yield part.first_position + first_row + offset, row

    def describe(self) -> str:
        return f"{self.total_rows} rows in {len(self.parts)} parquet file(s)"


def build_layout(files: list[str], cache: FooterCache) -> ParquetLayout:
    """The layout of `files` (in order); footers are read only for file versions the cache lacks."""
    import fsspec

    parts, position = [], 0
    for url in files:
        filesystem, path = fsspec.core.url_to_fs(url)
        version = _file_version(url, filesystem, path)
        row_group_rows = cache.get(version)
        if row_group_rows is None:
            row_group_rows = read_row_group_rows(url)
            cache.put(version, row_group_rows)
        part = ParquetPart(url, position, tuple(row_group_rows))
        parts.append(part)
        position += part.rows
    cache.save()
    return ParquetLayout(tuple(parts))
