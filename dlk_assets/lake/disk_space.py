"""Refuse a write the filesystem cannot hold, before the engine starts it.

Deep Lake does not survive ENOSPC mid-commit: the commit is half-written and every later read of
the table crashes. So every write to a local lake or file store first checks free space against the
write's size plus a margin, and refuses with the path and the space needed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DEFAULT_MARGIN_BYTES = 256 << 20
# Deep Lake writes more than the raw values (chunk headers, the log, index files): count each byte twice.
WRITE_AMPLIFICATION = 2


class InsufficientSpaceError(OSError):
    """Not enough free space for a write; nothing was written."""


def free_space_margin() -> int:
    """Bytes that must stay free after any write (`DLK_MIN_FREE_BYTES`, default 256 MiB)."""
    return int(os.environ.get("DLK_MIN_FREE_BYTES", DEFAULT_MARGIN_BYTES))


def _existing_parent(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_bytes(path: Path) -> int:
    """Bytes of every file under `path` (0 when it does not exist)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue  # removed while walking
    return total


def ensure_free_space(path: Path, write_bytes: int, what: str, amplification: int = WRITE_AMPLIFICATION) -> None:
    """Raise `InsufficientSpaceError` unless `path`'s filesystem has room for `write_bytes` times
    `amplification` plus the margin."""
    free = shutil.disk_usage(_existing_parent(path)).free
    needed = int(write_bytes) * amplification + free_space_margin()
    if free < needed:
        raise InsufficientSpaceError(
            f"not enough free space for {what} under {path}: {_mib(needed)} needed "
            f"({_mib(write_bytes)} to write x{amplification} plus a {_mib(free_space_margin())} margin), "
            f"{_mib(free)} free; nothing was written (free space, or lower DLK_MIN_FREE_BYTES)")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
