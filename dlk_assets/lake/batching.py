"""Append rows in batches that shrink on transient failures and grow back, resuming by row key.

The loop the SWE-trace guide describes (resume, batch inserts, adapt the batch size), made safe to
re-run: before writing it asks the table which keys are already there, and after a failure it asks
again, because a write can land even when its acknowledgement is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlk_assets.lake.schema import ROW_KEY
from dlk_assets.lake.tables import Table


class TransientWriteError(RuntimeError):
    """A write failure worth retrying: a timeout, a dropped connection, a busy store."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientWriteError, TimeoutError, ConnectionError)


@dataclass(frozen=True)
class BatchPolicy:
    """How big batches start, how far they shrink and grow, and how long to back off."""

    batch_size: int = 64
    min_batch_size: int = 1
    max_batch_size: int = 1024
    max_consecutive_failures: int = 8
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    grow_after_successes: int = 2

    def __post_init__(self):
        if not 1 <= self.min_batch_size <= self.batch_size <= self.max_batch_size:
            raise ValueError(f"need 1 <= min_batch_size <= batch_size <= max_batch_size, got {self}")


@dataclass
class AppendReport:
    """What an append run did: rows written now, rows found already present, and how it got there."""

    written: int = 0
    already_present: int = 0
    batches: int = 0
    retries: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def append_missing(table: Table, partition: str, rows: list[dict[str, Any]], message: str,
                   policy: BatchPolicy = BatchPolicy(), sleep: Callable[[float], None] = time.sleep,
                   log: Callable[[str], None] = lambda _: None) -> AppendReport:
    """Append the rows of `partition` whose keys the table does not hold yet, in adaptive batches.

    On a transient error the batch size halves (down to `min_batch_size`) and the same rows are
    retried after an exponential backoff; after `grow_after_successes` clean batches it doubles again
    (up to `max_batch_size`). Any other error, or too many failures in a row, is raised: the rows
    committed so far stay, and a re-run continues from there.
    """
    present = table.row_keys(partition)
    pending = [row for row in rows if row[ROW_KEY] not in present]
    report = AppendReport(already_present=len(rows) - len(pending))
    size, failures, clean = policy.batch_size, 0, 0
    while pending:
        batch = pending[:size]
        try:
            # skip_existing: a second writer of this shard (a sensor run beside a backfill) may have
            # landed some of these keys since we asked; the table drops them under its write lock.
            write = table.append(partition, batch, f"{message} ({report.written + len(batch)}/{report.written + len(pending)})",
                                 skip_existing=True)
        except TRANSIENT_ERRORS as exc:
            failures += 1
            report.retries += 1
            if failures > policy.max_consecutive_failures:
                raise
            # The write may have landed before the error reached us: drop whatever is there now.
            landed = table.row_keys(partition)
            before = len(pending)
            pending = [row for row in pending if row[ROW_KEY] not in landed]
            report.written += before - len(pending)
            wait = min(policy.backoff_s * 2 ** (failures - 1), policy.max_backoff_s)
            size, clean = max(policy.min_batch_size, size // 2), 0
            event = f"transient write failure ({type(exc).__name__}: {exc}); {before - len(pending)} row(s) had landed; batch size now {size}, retrying in {wait:.2f} s"
            report.events.append(event)
            log(event)
            sleep(wait)
            continue
        pending = pending[len(batch):]
        report.written += write.rows_written
        report.already_present += write.rows_already_present
        report.batches += 1
        report.batch_sizes.append(len(batch))
        failures, clean = 0, clean + 1
        if clean >= policy.grow_after_successes and size < policy.max_batch_size:
            size, clean = min(policy.max_batch_size, size * 2), 0
    return report
