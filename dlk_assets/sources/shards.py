"""Shards of a Hugging Face dataset: keys, the skip-or-fail policy, and one shared reader.

Every streamed source (COCO, SWE traces) is its parquet files in stream order (the order
`datasets.load_dataset(..., streaming=True)` yields), cut into fixed-size shards by stream
position; a shard is one Dagster partition and reads only the row groups that hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from dlk_assets.sources.parquet_layout import (
    FooterCache,
    ParquetLayout,
    build_layout,
    resolve_data_files,
)

Record = TypeVar("Record")
ON_BAD_RECORD = ("skip", "fail")


class BadRecordError(ValueError):
    """A source record that cannot be ingested; the message names the item and the field."""


@dataclass(frozen=True)
class SkippedRecord:
    """A record the reader could not use, and why."""

    position: int
    item: str
    reason: str
    duplicate: bool = False  # a later copy of an item already kept (first wins), not a bad item


@dataclass
class ShardRead(Generic[Record]):
    """The usable records of one shard and the ones skipped under the skip policy."""

    records: list[Record] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)


def shard_key(index: int) -> str:
    """Partition key of shard `index` (zero-padded so keys sort in stream order)."""
    return f"shard-{index:05d}"


def shard_index(key: str) -> int:
    """Inverse of `shard_key`; rejects keys that are not shard keys."""
    prefix = "shard-"
    if not key.startswith(prefix) or not key[len(prefix):].isdigit():
        raise ValueError(f"not a shard partition key: {key!r} (expected e.g. 'shard-00000')")
    return int(key[len(prefix):])


@dataclass(frozen=True)
class ParquetSource:
    """A Hugging Face dataset (or a local folder in hub layout, or parquet files of the same shape),
    read by stream position from its parquet row groups.

    The bundled samples go through the same path: `datasets` resolves the split's data files, fsspec
    opens them (`hf://` for the hub), and a shard reads only the row groups holding its positions.
    `footer_cache` is where row-group sizes are kept between processes (empty: in memory only).
    """

    dataset: str = "bundled-sample"
    split: str = "train"
    data_files: tuple[str, ...] = ()
    footer_cache: str = ""

    BUNDLED = "bundled-sample"

    @property
    def label(self) -> str:
        """A short name for lineage metadata."""
        return self.dataset if not self.data_files else f"parquet:{','.join(self.data_files)}"

    def bundled_files(self) -> list[str]:
        """The parquet files that stand in for the dataset when it is `bundled-sample`."""
        raise NotImplementedError(f"{type(self).__name__} has no bundled sample")

    @cached_property
    def layout(self) -> ParquetLayout:
        """Where every stream position lives (built once per source object)."""
        explicit = self.data_files or (tuple(self.bundled_files()) if self.dataset == self.BUNDLED else ())
        files = resolve_data_files(None if explicit else self.dataset, self.split, explicit)
        return build_layout(files, FooterCache(Path(self.footer_cache) if self.footer_cache else None))

    def iter_raw(self, start: int, count: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield (position, raw item) for up to `count` items starting at stream position `start`."""
        return self.layout.iter_rows(start, count)

    def positions(self) -> int:
        """How many stream positions (rows) the source holds now."""
        return self.layout.total_rows

    def has_shard(self, index: int, shard_size: int) -> bool:
        """True when the source holds at least one item for shard `index`."""
        return index * shard_size < self.positions()

    def describe_size(self) -> str:
        """How much the source holds now, for sensor messages."""
        return self.layout.describe()


def read_shard_records(items: Iterator[tuple[int, dict[str, Any]]], parse: Callable[[dict[str, Any], int], Record],
                       describe: Callable[[dict[str, Any]], str], on_bad_record: str, empty_message: str,
                       identity: Callable[[Record], str] | None = None) -> ShardRead[Record]:
    """Parse a shard's items; bad ones are skipped and listed, or raise when `on_bad_record='fail'`.

    Nothing a single item holds fails the shard under `skip`: an unexpected error while parsing it is
    a bad item like any other. Duplicate items (same `identity`) follow one policy in every source:
    the first wins, the others are skipped and listed. An empty shard is an error (`BadRecordError`
    with `empty_message`): it means the partition points past the end of the source.
    """
    if on_bad_record not in ON_BAD_RECORD:
        raise ValueError(f"on_bad_record must be 'skip' or 'fail', got {on_bad_record!r}")
    result: ShardRead[Record] = ShardRead()
    first_seen: dict[str, int] = {}
    for position, raw in items:
        try:
            record = parse(raw, position)
        except Exception as exc:
            error = exc if isinstance(exc, BadRecordError) else BadRecordError(
                f"stream position {position} ({describe(raw)}): unexpected {type(exc).__name__}: {exc}")
            if on_bad_record == "fail":
                raise error from exc
            result.skipped.append(SkippedRecord(position, describe(raw), str(error)))
            continue
        key = identity(record) if identity else None
        if key is not None and key in first_seen:
            result.skipped.append(SkippedRecord(position, describe(raw), f"duplicate of the item at stream position "
                                                f"{first_seen[key]} (first wins)", duplicate=True))
            continue
        if key is not None:
            first_seen[key] = position
        result.records.append(record)
    if not result.records and not result.skipped:
        raise BadRecordError(empty_message)
    return result
