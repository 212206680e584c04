"""Content-addressed local file store: `root/<aa>/<sha256>` plus a small JSON record per file id."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from dlk_assets.lake.disk_space import ensure_free_space
from dlk_assets.lake.files import (
    FileIntegrityError,
    FileNotFoundInStore,
    FileStore,
    StoredFile,
    content_file_id,
    parse_file_id,
    sha256_hex,
    verified_chunks,
)

TEMP_PREFIX = ".tmp-"
STAGING = "staging"
# A temp file this old has no live writer (a put streams at disk speed): it was left by a killed run.
ORPHAN_AGE_S = 6 * 3600


def atomic_write(path: Path, data: bytes, staging_dir: Path) -> None:
    """Write `data` to `path` through a temp file in `staging_dir` and a rename."""
    # Write-then-rename so a killed run never leaves a half-written file under its final name; the temp
    # file lives in one staging folder, so what a killed run leaves is found (and swept) in one place.
    path.parent.mkdir(parents=True, exist_ok=True)
    staging_dir.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=staging_dir, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _copy_hashing(source: Path, staging_dir: Path, chunk_size: int = 8 << 20) -> tuple[Path, str, int]:
    """Copy `source` into a temporary file under `staging_dir`, hashing on the way (one read)."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=staging_dir, prefix=TEMP_PREFIX)
    digest, size = hashlib.sha256(), 0
    try:
        with open(source, "rb") as src, os.fdopen(handle, "wb") as out:
            while chunk := src.read(chunk_size):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp), digest.hexdigest(), size


class LocalFileStore(FileStore):
    """Files under one root; ids are derived from content, and only ids (never names) become paths.
    Opening the store sweeps temp files that killed writers left in its staging folder."""

    def __init__(self, root: str | Path, sweep_older_than_s: float | None = ORPHAN_AGE_S):
        self.root = Path(root)
        if sweep_older_than_s is not None:
            self.sweep_orphans(sweep_older_than_s)

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def orphans(self, older_than_s: float = ORPHAN_AGE_S) -> list[Path]:
        """Temp files older than `older_than_s` anywhere in the store (older versions staged next to blobs)."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than_s
        found = []
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    found.append(path)
            except FileNotFoundError:  # its writer renamed or removed it meanwhile
                continue
        return sorted(found)

    def sweep_orphans(self, older_than_s: float = ORPHAN_AGE_S) -> list[Path]:
        """Remove staged temp files older than `older_than_s` (cheap: one folder); returns what went."""
        if not self.staging.is_dir():
            return []
        cutoff, removed = time.time() - older_than_s, []
        for path in self.staging.glob(f"{TEMP_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue
        return removed

    def _blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def _record_path(self, file_id: str) -> Path:
        return self.root / "ids" / file_id[:2] / f"{file_id}.json"

    def put(self, data: bytes, filename: str, content_type: str) -> StoredFile:
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError(f"cannot store {filename!r}: no bytes")
        digest = sha256_hex(bytes(data))
        stored = StoredFile(content_file_id(digest), digest, len(data), os.path.basename(filename), content_type)
        blob = self._blob_path(digest)
        if not blob.exists() or blob.stat().st_size != len(data):
            ensure_free_space(self.root, len(data), f"file {stored.filename!r}")
            atomic_write(blob, bytes(data), self.staging)
        self._record(stored)
        return stored

    def _record(self, stored: StoredFile) -> None:
        record = self._record_path(stored.file_id)
        if not record.exists():
            atomic_write(record, json.dumps(stored.__dict__).encode(), self.staging)

    def put_file(self, path: Path, filename: str, content_type: str) -> StoredFile:
        """Stream a file into the store in chunks (videos can be larger than memory)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"cannot store {filename!r}: {path} is not a file")
        ensure_free_space(self.root, path.stat().st_size, f"file {os.path.basename(filename)!r}")
        temp, digest, size = _copy_hashing(path, self.staging)
        try:
            if not size:
                raise ValueError(f"cannot store {filename!r}: no bytes")
            stored = StoredFile(content_file_id(digest), digest, size, os.path.basename(filename), content_type)
            blob = self._blob_path(digest)
            if not blob.exists() or blob.stat().st_size != size:
                blob.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, blob)
        finally:
            temp.unlink(missing_ok=True)
        self._record(stored)
        return stored

    def stat(self, file_id: str) -> StoredFile:
        record = self._record_path(parse_file_id(file_id))
        if not record.exists():
            raise FileNotFoundInStore(f"no file {file_id} in {self.root}")
        return StoredFile(**json.loads(record.read_text()))

    def get(self, file_id: str) -> bytes:
        stored = self.stat(file_id)
        data = self._blob_path(stored.sha256).read_bytes()
        if sha256_hex(data) != stored.sha256:
            raise FileIntegrityError(f"file {file_id} in {self.root} is corrupt: it does not match its sha256 {stored.sha256}")
        return data

    def stream(self, file_id: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes in chunks, hashed on the way: the last chunk comes only after the sha256 matched,
        so a reader never finishes with corrupt bytes (`FileIntegrityError` instead)."""
        stored = self.stat(file_id)
        with open(self._blob_path(stored.sha256), "rb") as handle:
            yield from verified_chunks(iter(lambda: handle.read(chunk_size), b""), file_id, stored.sha256, str(self.root))
