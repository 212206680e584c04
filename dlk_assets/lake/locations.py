"""Where a lake's Deep Lake datasets live: a local folder, or a prefix in object storage.

The table code is the same for both; a location answers the questions that differ: the URL and
credentials of a table's dataset, which tables exist, where the write locks are, and whether a
write must first check a local disk for room (object storage has no disk to fill).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlparse

from dlk_assets.lake.locks import lock_path, table_write_lock

LOCK_DIR = ".locks"  # under a local lake's root; a dot name is never taken for a table
# The URL schemes Deep Lake 4 opens as object storage (`gcs://` and `gs://` are the same store).
OBJECT_SCHEMES = ("s3", "gcs", "gs", "azure", "az")


def check_table_name(name: str) -> str:
    """`name` when it is a usable table name: one path segment, not hidden."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid table name {name!r}")
    return name


class LakeLocation(ABC):
    """The root under which every table is one Deep Lake dataset named after the table."""

    creds: dict[str, str] | None = None

    @property
    @abstractmethod
    def url(self) -> str:
        """The root as a URL (shown to users and in the UI)."""

    @abstractmethod
    def dataset_url(self, name: str) -> str:
        """The URL Deep Lake opens for table `name`."""

    @abstractmethod
    def names(self) -> list[str]:
        """Candidate table names under the root (callers confirm each with `deeplake.exists`)."""

    @abstractmethod
    def lock(self, name: str) -> AbstractContextManager[None]:
        """Table `name`'s write lock."""

    def local_folder(self, name: str) -> Path | None:
        """The folder holding table `name` on a local disk, or None where there is no disk to fill."""
        return None

    def head_file(self, name: str) -> Path | None:
        """Where table `name`'s writers record the version they left (`heads.py`), or None where every
        writer cannot reach one record (object storage: writers on other machines)."""
        return None

    def prepare(self) -> None:
        """Make the root ready for a new table (a local folder is created; buckets already exist)."""


class LocalFolder(LakeLocation):
    """Datasets in `root/<table>` on this machine; locks in `root/.locks`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def url(self) -> str:
        return f"file://{self.root.resolve()}"

    def dataset_url(self, name: str) -> str:
        return f"file://{(self.root / check_table_name(name)).resolve()}"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def lock(self, name: str) -> AbstractContextManager[None]:
        return table_write_lock(self.root / LOCK_DIR, name)

    def local_folder(self, name: str) -> Path | None:
        return self.root / check_table_name(name)

    def head_file(self, name: str) -> Path | None:
        return lock_path(self.root / LOCK_DIR, check_table_name(name)).with_suffix(".head")

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


class ObjectPrefix(LakeLocation):
    """Datasets at `<url>/<table>` in a bucket (`s3://`, `gcs://`, `azure://`).

    Locks are files in `lock_dir` on this machine: they serialize the writers of one machine (one
    Dagster daemon, or the step processes of one node). Writers on other machines are kept apart by
    Dagster's run-level concurrency (one run per partition), see the README.
    """

    def __init__(self, url: str, lock_dir: str | Path, creds: dict[str, str] | None = None):
        parsed = urlparse(url)
        if parsed.scheme not in OBJECT_SCHEMES or not parsed.netloc:
            raise ValueError(f"not an object-storage URL with a bucket: {url!r} (expected s3://bucket/prefix, "
                             f"gcs://bucket/prefix or azure://account/container/prefix)")
        self._url = url.rstrip("/")
        self.lock_dir = Path(lock_dir)
        self.creds = {k: v for k, v in (creds or {}).items() if v} or None

    @property
    def url(self) -> str:
        return self._url

    def dataset_url(self, name: str) -> str:
        return f"{self._url}/{check_table_name(name)}"

    def lock(self, name: str) -> AbstractContextManager[None]:
        # Keyed by the dataset URL: two lakes in different buckets never share a lock.
        return table_write_lock(self.lock_dir, self.dataset_url(name))

    def names(self) -> list[str]:
        parsed = urlparse(self._url)
        if parsed.scheme != "s3":
            raise NotImplementedError(f"listing the tables of a {parsed.scheme}:// lake is not supported yet; "
                                      "open tables by name, or keep the lake on s3://")
        return _s3_folder_names(parsed.netloc, parsed.path.strip("/"), self.creds or {})


def _s3_folder_names(bucket: str, prefix: str, creds: dict[str, str]) -> list[str]:
    """The 'folders' directly under `prefix` in `bucket`."""
    import boto3

    client = boto3.client("s3", endpoint_url=creds.get("endpoint_url"), region_name=creds.get("aws_region"),
                          aws_access_key_id=creds.get("aws_access_key_id"),
                          aws_secret_access_key=creds.get("aws_secret_access_key"))
    start = f"{prefix}/" if prefix else ""
    names = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start, Delimiter="/"):
        names += [entry["Prefix"][len(start):].rstrip("/") for entry in page.get("CommonPrefixes", [])]
    return sorted(n for n in names if n and not n.startswith("."))
