"""The file store interface: bytes in, a stable `file_id` out, bytes back by `file_id`."""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Namespace for content-derived file ids: the same bytes always get the same UUID.
FILE_ID_NAMESPACE = uuid.UUID("5b0f6f0e-4c1f-4d8e-9a3b-64c1c0de1a7e")


class FileNotFoundInStore(KeyError):
    """No file with that id."""


class FileIntegrityError(OSError):
    """Stored bytes do not match the sha256 they are stored under."""


@dataclass(frozen=True)
class StoredFile:
    """A file in the store."""

    file_id: str
    sha256: str
    size: int
    filename: str
    content_type: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path, chunk_size: int = 8 << 20) -> tuple[str, int]:
    """(sha256, size) of a file on disk, read in chunks so a multi-GB video is never held whole."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source:
        while chunk := source.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verified_chunks(chunks: Iterable[bytes], file_id: str, sha256: str, where: str) -> Iterator[bytes]:
    """`chunks` passed through and hashed on the way; the last one is handed over only once the whole
    sha256 matched, so a reader never finishes with corrupt bytes (`FileIntegrityError` instead)."""
    digest, held = hashlib.sha256(), None
    for chunk in chunks:
        digest.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if digest.hexdigest() != sha256:
        raise FileIntegrityError(f"file {file_id} in {where} is corrupt: it does not match its sha256 {sha256}")
    if held is not None:
        yield held


def content_file_id(sha256: str) -> str:
    """The UUID for content with this sha256 (UUIDv5 in a fixed namespace)."""
    return str(uuid.uuid5(FILE_ID_NAMESPACE, sha256))


def parse_file_id(file_id: str) -> str:
    """Canonical form of a file id, rejecting anything that is not a UUID (so ids never form paths)."""
    try:
        return str(uuid.UUID(str(file_id)))
    except ValueError as exc:
        raise FileNotFoundInStore(f"not a file id (expected a UUID): {file_id!r}") from exc


class FileStore(ABC):
    """Where raw bytes live; tables refer to them by `file_id`."""

    @abstractmethod
    def put(self, data: bytes, filename: str, content_type: str) -> StoredFile:
        """Store bytes (idempotent for the same bytes) and return their id and sha256."""

    def put_file(self, path: Path, filename: str, content_type: str) -> StoredFile:
        """Store a file from disk; backends that can stream override this so a multi-GB video is
        never held in memory whole."""
        return self.put(Path(path).read_bytes(), filename, content_type)

    @abstractmethod
    def get(self, file_id: str) -> bytes:
        """The bytes of a file."""

    @abstractmethod
    def stat(self, file_id: str) -> StoredFile:
        """What the store knows about a file."""

    def stream(self, file_id: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes in chunks (backends with real streaming override this)."""
        data = self.get(file_id)
        for start in range(0, len(data), chunk_size):
            yield data[start:start + chunk_size]

    def download(self, file_id: str, path: Path) -> Path:
        """Write the file to `path` (tools such as ffmpeg need a path), checking its sha256 on the way."""
        expected = self.stat(file_id).sha256
        digest = hashlib.sha256()
        with open(path, "wb") as out:
            for chunk in self.stream(file_id):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            path.unlink(missing_ok=True)
            raise OSError(f"file {file_id} does not match its recorded sha256")
        return path
