"""Content-addressed local file store: `root/<aa>/<sha256>` plus a small JSON record per file id."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dlk_assets.lake.files import (
    FileNotFoundInStore,
    FileStore,
    StoredFile,
    content_file_id,
    parse_file_id,
    sha256_hex,
)


def _atomic_write(path: Path, data: bytes) -> None:
    # Write-then-rename so a killed run never leaves a half-written file under its final name.
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
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
    handle, temp = tempfile.mkstemp(dir=staging_dir, prefix=".tmp-")
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
    """Files under one root; ids are derived from content, and only ids (never names) become paths."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

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
            _atomic_write(blob, bytes(data))
        self._record(stored)
        return stored

    def _record(self, stored: StoredFile) -> None:
        record = self._record_path(stored.file_id)
        if not record.exists():
            _atomic_write(record, json.dumps(stored.__dict__).encode())

    def put_file(self, path: Path, filename: str, content_type: str) -> StoredFile:
        """Stream a file into the store in chunks (videos can be larger than memory)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"cannot store {filename!r}: {path} is not a file")
        temp, digest, size = _copy_hashing(path, self.root / "blobs")
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
            raise OSError(f"file {file_id} is corrupt on disk: sha256 does not match its record")
        return data

    def stream(self, file_id: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        stored = self.stat(file_id)
        with open(self._blob_path(stored.sha256), "rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk
