"""Where the HTTP file store keeps what the /files API does not tell: each file id's sha256, size,
name and type, and which id holds a sha256 (so a re-run uploads nothing it already uploaded).

`FolderFileIndex` keeps records under a local folder: enough for one machine. `PgFileIndex` keeps them
in a bookkeeping table of the Deep Lake PG workspace (`pg_sql.FILES_TABLE`), where every machine and
every Kubernetes step pod that reaches the tables reaches them too: a file uploaded in one pod is
read, sha256-checked, in another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from dlk_assets.lake import pg_sql
from dlk_assets.lake.files import StoredFile
from dlk_assets.lake.local_files import atomic_write


class FileIndex(Protocol):
    """Records of uploaded files, by id and by sha256."""

    def by_id(self, file_id: str) -> StoredFile | None:
        """The record of `file_id`, or None."""

    def by_sha256(self, sha256: str) -> StoredFile | None:
        """The record of the file holding these bytes, or None."""

    def remember(self, stored: StoredFile) -> None:
        """Record an uploaded file."""


class FolderFileIndex:
    """Records as small JSON files under `root` (`ids/`, `sha256/`), written atomically through `staging`."""

    def __init__(self, root: Path, staging: Path):
        self.root, self.staging = Path(root), Path(staging)

    def _by_sha(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / f"{sha256}.json"

    def _by_id(self, file_id: str) -> Path:
        return self.root / "ids" / file_id[:2] / f"{file_id}.json"

    @staticmethod
    def _read(record: Path, **known: str) -> StoredFile | None:
        if not record.exists():
            return None
        fields = {**json.loads(record.read_text()), **known}
        return StoredFile(fields["file_id"], fields["sha256"], int(fields["size"]), fields["filename"], fields["content_type"])

    def by_id(self, file_id: str) -> StoredFile | None:
        return self._read(self._by_id(file_id), file_id=file_id)

    def by_sha256(self, sha256: str) -> StoredFile | None:
        return self._read(self._by_sha(sha256), sha256=sha256)

    def remember(self, stored: StoredFile) -> None:
        # The id record first: a sha256 record never points at an id that by_id() does not know.
        described = {"size": stored.size, "filename": stored.filename, "content_type": stored.content_type}
        atomic_write(self._by_id(stored.file_id), json.dumps({"sha256": stored.sha256, **described}).encode(), self.staging)
        atomic_write(self._by_sha(stored.sha256), json.dumps({"file_id": stored.file_id, **described}).encode(), self.staging)


class PgFileIndex:
    """Records in the workspace's `dlk_files` table, through a `DeepLakePg` lake's connection pool."""

    def __init__(self, lake):
        self.lake = lake  # a DeepLakePg

    def _one(self, by: str, value: str) -> StoredFile | None:
        rows = self.lake.bookkeeping(pg_sql.file_record(self.lake.workspace, by, value))
        if not rows:
            return None
        file_id, sha256, size, filename, content_type = rows[0]
        return StoredFile(str(file_id), str(sha256), int(size), str(filename), str(content_type))

    def by_id(self, file_id: str) -> StoredFile | None:
        return self._one("file_id", file_id)

    def by_sha256(self, sha256: str) -> StoredFile | None:
        return self._one("sha256", sha256)

    def remember(self, stored: StoredFile) -> None:
        self.lake.bookkeeping(pg_sql.remember_file(self.lake.workspace, (
            stored.file_id, stored.sha256, stored.size, stored.filename, stored.content_type)))


class LayeredFileIndex:
    """A shared index (`primary`) in front of an earlier one (`earlier`, this machine's folder from before
    the records moved): a record found only in the earlier one is copied into the shared one, so files
    uploaded before the move stay readable and are not uploaded again."""

    def __init__(self, primary: FileIndex, earlier: FileIndex):
        self.primary, self.earlier = primary, earlier

    def _carried(self, found: StoredFile | None) -> StoredFile | None:
        if found is not None:
            self.primary.remember(found)
        return found

    def by_id(self, file_id: str) -> StoredFile | None:
        return self.primary.by_id(file_id) or self._carried(self.earlier.by_id(file_id))

    def by_sha256(self, sha256: str) -> StoredFile | None:
        return self.primary.by_sha256(sha256) or self._carried(self.earlier.by_sha256(sha256))

    def remember(self, stored: StoredFile) -> None:
        self.primary.remember(stored)
