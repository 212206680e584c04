"""What every ingest asset does to keep stored rows safe: the first stored copy of an item wins, and a
re-run that skipped items never shrinks a partition silently (a source that simply holds fewer items
now may shrink it: that is the source's truth)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.lake.schema import ROW_KEY
from dlk_assets.lake.tables import PartitionShrinkError, PartitionWrite, Table
from dlk_assets.sources.shards import SkippedRecord

Record = TypeVar("Record")


class IngestConfig(dg.Config):
    """Run configuration of an ingest asset (set it in the launchpad)."""

    allow_shrink: bool = Field(default=False, description=(
        "Let this run store fewer rows than the partition holds although items were skipped "
        "(e.g. source items that really went bad). Off by default: such a run fails and keeps the stored rows."))


def skip_claimed_elsewhere(table: Table, partition: str, records: list[Record], key_of: Callable[[Record], str],
                           describe: Callable[[Record], tuple[int, str]]) -> tuple[list[Record], list[SkippedRecord]]:
    """Drop records whose row key another partition already stores (first wins across shards too).
    `describe(record)` gives its stream position and item label. Two shards claiming one new key at
    the same moment: the table's clash check under the write lock fails the later one, whose re-run
    then skips the key here."""
    holders = {key: holder for key, holder in table.partitions_of([key_of(r) for r in records]).items() if holder != partition}
    kept, skipped = [], []
    for record in records:
        holder = holders.get(key_of(record))
        if holder is None:
            kept.append(record)
        else:
            position, item = describe(record)
            skipped.append(SkippedRecord(position, item, f"duplicate: partition {holder!r} already stores "
                                         f"{key_of(record)} (first wins)", duplicate=True))
    return kept, skipped


def skipped_metadata(skipped: Sequence[SkippedRecord]) -> dict[str, Any]:
    """Counts and, when there are any, a table of the skipped items for the materialization."""
    metadata: dict[str, Any] = {"skipped": sum(not s.duplicate for s in skipped), "duplicates": sum(s.duplicate for s in skipped)}
    if skipped:
        metadata["skipped_items"] = dg.MetadataValue.md(markdown_table(
            ("position", "item", "reason"), [(s.position, s.item, s.reason) for s in skipped]))
    return metadata


def _listed(skipped: Sequence[SkippedRecord]) -> str:
    return "; ".join(f"{s.item}: {s.reason}" for s in skipped[:10]) + (f"; and {len(skipped) - 10} more" if len(skipped) > 10 else "")


def replace_ingested_partition(table: Table, partition: str, rows: list[dict[str, Any]], skipped: Sequence[SkippedRecord],
                               message: str, allow_shrink: bool) -> PartitionWrite:
    """Replace the partition's rows of a shard (a fixed range of the source's items), refusing
    (`dg.Failure`, stored rows kept) when items were skipped and a stored row would go, unless
    `allow_shrink`: by key, so three new items arriving while three stored ones went bad refuse too;
    and by count under the write lock, for a writer that raced this check."""
    if skipped and not allow_shrink:
        # Read before the write's lock: the run queue keeps two runs of one partition apart (dagster.yaml).
        losing = sorted(table.row_keys(partition) - {row[ROW_KEY] for row in rows})
        if losing:
            raise dg.Failure(
                description=(f"{partition}: refusing to drop {len(losing)} stored row(s) of {table.schema.name} "
                             f"({', '.join(losing[:10])}{' …' if len(losing) > 10 else ''}) because {len(skipped)} item(s) "
                             f"were skipped ({_listed(skipped)}). The stored rows are unchanged; fix the source, or re-run "
                             "with run config allow_shrink: true to drop them."),
                metadata={"stored_rows_dropped": len(losing), "new_rows": len(rows), **skipped_metadata(skipped)})
    try:
        return table.replace_partition(partition, rows, message, shrink_allowed=allow_shrink or not skipped)
    except PartitionShrinkError as exc:
        listed = _listed(skipped)
        raise dg.Failure(
            description=(f"{partition}: refusing to shrink {table.schema.name} from {exc.stored} to {exc.new} row(s) because "
                         f"{len(skipped)} item(s) were skipped ({listed}). The stored rows are unchanged; fix the source, "
                         "or re-run with run config allow_shrink: true to store the smaller partition."),
            metadata={"stored_rows": exc.stored, "new_rows": exc.new, **skipped_metadata(skipped)}) from exc


def replace_listed_partition(table: Table, partition: str, rows: list[dict[str, Any]], skipped: Sequence[SkippedRecord],
                             key_of_skipped: Callable[[SkippedRecord], str], message: str, allow_shrink: bool) -> PartitionWrite:
    """Replace the partition's rows for a source that lists its items (a folder of files).

    An item gone from the listing takes its rows with it: deleting a file is the source's truth, not a
    skip. An item still listed but skipped (a file that no longer decodes) must not lose the row stored
    for it silently: that refuses (`dg.Failure`, stored rows kept) unless `allow_shrink`. Unlike the count
    check of `replace_ingested_partition`, this holds when files were added and others went bad in one run.
    `key_of_skipped(record)` is the row key the skipped item would have had.
    """
    # Read before the write's lock: the run queue keeps two runs of one partition apart (dagster.yaml).
    stored = table.row_keys(partition)
    losing = [record for record in skipped if key_of_skipped(record) in stored]
    if losing and not allow_shrink:
        raise dg.Failure(
            description=(f"{partition}: refusing to drop {len(losing)} stored row(s) of {table.schema.name} because their "
                         f"item(s) were skipped ({_listed(losing)}). The stored rows are unchanged; fix the source, or "
                         "re-run with run config allow_shrink: true to drop them."),
            metadata={"stored_rows": len(stored), "new_rows": len(rows), **skipped_metadata(skipped)})
    return table.replace_partition(partition, rows, message)
