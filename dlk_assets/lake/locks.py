"""Inter-process write locks: one writer per table on one machine, across Dagster's run processes.

Dagster runs every partition in its own process, and a backfill plus a sensor can launch the same
partition twice, so a thread lock is not enough. An OS file lock (`flock` through `filelock`) is held
across the clash check, the write and the commit; the kernel releases it when its holder dies, so a
`kill -9` never leaves a table locked. Across machines this lock does not reach: there Dagster's
run-level concurrency keeps two runs off one partition (see `dagster_home/dagster.yaml`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

DEFAULT_LOCK_TIMEOUT_S = 900.0
_LOCKS: dict[str, FileLock] = {}


class TableLockTimeout(RuntimeError):
    """Another writer held the table's lock for longer than the timeout. Not a `TimeoutError`: batch
    writers retry those as transient, and a held lock does not get free by retrying sooner."""


def lock_timeout_s() -> float:
    """How long a writer waits for a table's lock (`DLK_LOCK_TIMEOUT_S`, default 15 minutes)."""
    return float(os.environ.get("DLK_LOCK_TIMEOUT_S", DEFAULT_LOCK_TIMEOUT_S))


def _lock_for(path: Path) -> FileLock:
    # One FileLock object per path and process: it is re-entrant within a thread, and two threads
    # holding their own file descriptions still exclude each other (flock is per open file).
    key = str(Path(path).resolve())
    if key not in _LOCKS:
        path.parent.mkdir(parents=True, exist_ok=True)
        _LOCKS[key] = FileLock(key, thread_local=True)
    return _LOCKS[key]


def lock_path(lock_dir: Path, name: str) -> Path:
    """The lock file of table `name` (hashed, so any table name or URL makes a safe file name)."""
    return Path(lock_dir) / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"


@contextmanager
def table_write_lock(lock_dir: Path, name: str, timeout_s: float | None = None) -> Iterator[None]:
    """Hold table `name`'s write lock for the block; `TableLockTimeout` names the table when it stays taken."""
    timeout = lock_timeout_s() if timeout_s is None else timeout_s
    lock = _lock_for(lock_path(lock_dir, name))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise TableLockTimeout(f"table {name!r} is being written by another process for more than {timeout:g} s "
                               f"(lock {lock.lock_file}); retry later or raise DLK_LOCK_TIMEOUT_S") from exc
    try:
        yield
    finally:
        lock.release()
