"""Write a folder whole or not at all: fill a staging folder beside it, then swap it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A fresh folder beside `out_dir` to fill. When the block ends without an error it replaces
    `out_dir` (the old one is moved aside first, then removed); on an error it is removed and `out_dir`
    stays as it was. So a reader, or a killed run, never sees a half-written folder."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    staging.chmod(0o755)  # mkdtemp's 0700 would follow the folder into place
    try:
        yield staging
        backup = out_dir.with_name(f".{out_dir.name}-old")
        shutil.rmtree(backup, ignore_errors=True)
        if out_dir.exists():
            os.replace(out_dir, backup)
        os.replace(staging, out_dir)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
