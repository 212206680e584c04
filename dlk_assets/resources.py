"""Dagster resources: the lake, the file store, the model registry and the sources.

Each concern has a base resource with the interface the assets use and a local implementation;
`dlk_assets.profile.profile_resources` is the one place that picks implementations.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from dlk_assets.lake.deeplake_local import LocalDeepLake, ObjectStoreDeepLake
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.local_files import LocalFileStore
from dlk_assets.lake.tables import Lake
from dlk_assets.media.images import DEFAULT_MAX_IMAGE_PIXELS
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.models.settings import load_settings
from dlk_assets.sources.coco import BUNDLED_SAMPLE, CocoStream
from dlk_assets.sources.documents import (
    DocumentFolder,
    default_folders,
    document_folder,
)
from dlk_assets.sources.smartspaces import (
    DATASET_BASE,
    FolderVideoSource,
    HubVideoSource,
    VideoSource,
)
from dlk_assets.sources.swe_traces import SweTraceStream
from dlk_assets.text.chunking import (
    DEFAULT_CHUNK_CHARS,
    DEFAULT_OVERLAP_CHARS,
    check_chunk_settings,
)

GENERATED_SAMPLE = "generated-sample"


def dagster_home() -> Path:
    """The Dagster instance folder; lake data lives beneath it unless configured elsewhere."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("DAGSTER_HOME is not set: point it at the instance folder (e.g. DAGSTER_HOME=$PWD/dagster_home)")
    return Path(home)


def _under_home(configured: str, default_name: str) -> Path:
    return Path(configured) if configured else dagster_home() / default_name


class LakeResource(dg.ConfigurableResource):
    """Where tables live. Subclasses return a backend implementing `Lake`."""

    def lake(self) -> Lake:
        raise NotImplementedError(f"{type(self).__name__} must implement lake()")


class LocalLakeResource(LakeResource):
    """Local Deep Lake datasets (default: `$DAGSTER_HOME/lake`)."""

    root: str = Field(default="", description="Folder for the datasets; empty means $DAGSTER_HOME/lake.")

    def lake(self) -> Lake:
        return LocalDeepLake(_under_home(self.root, "lake"))


class ObjectStorageAccess(dg.ConfigurableResource):
    """Credentials and endpoint for a bucket. The profile fills them with `dg.EnvVar`s
    (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_REGION`), so secrets never
    appear as values in the UI; empty fields fall back to the SDK's own lookup (instance roles, ~/.aws)."""

    aws_access_key_id: str = Field(default="", description="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str = Field(default="", description="AWS_SECRET_ACCESS_KEY")
    endpoint_url: str = Field(default="", description="AWS_ENDPOINT_URL, for S3-compatible servers (MinIO, Ceph, R2, …)")
    aws_region: str = Field(default="", description="AWS_REGION")

    def creds(self) -> dict[str, str]:
        """The settings that are set, named as Deep Lake's `creds` argument names them."""
        values = {"aws_access_key_id": self.aws_access_key_id, "aws_secret_access_key": self.aws_secret_access_key,
                  "endpoint_url": self.endpoint_url, "aws_region": self.aws_region}
        return {name: value for name, value in values.items() if value}

    def s3_client(self):
        """A boto3 S3 client with these settings."""
        import boto3

        creds = self.creds()
        return boto3.client("s3", aws_access_key_id=creds.get("aws_access_key_id"),
                            aws_secret_access_key=creds.get("aws_secret_access_key"),
                            endpoint_url=creds.get("endpoint_url"), region_name=creds.get("aws_region"))


class ObjectStoreLakeResource(LakeResource, ObjectStorageAccess):
    """Deep Lake datasets in object storage (`s3://bucket/prefix`; `gcs://`, `azure://` where Deep Lake
    opens them), run by the embedded engine. Write locks stay on this machine (`lock_dir`)."""

    url: str = Field(description="DLK_LAKE_URL: the lake's root, e.g. s3://bucket/lake")
    lock_dir: str = Field(default="", description="folder for table write locks; empty means $DAGSTER_HOME/locks")

    def lake(self) -> Lake:
        return ObjectStoreDeepLake(self.url, _under_home(self.lock_dir, "locks"), self.creds())


class DeepLakePgLakeResource(LakeResource):
    """Tables in Deep Lake PG over SQL (psycopg 3 with a connection pool), the seed's direct path.
    The profile fills the password with a `dg.EnvVar`."""

    host: str = Field(description="SHARED_DLPG_HOST")
    port: int = Field(default=5432, description="SHARED_DLPG_PORT")
    user: str = Field(default="postgres", description="SHARED_DLPG_USER")
    password: str = Field(default="", description="SHARED_DLPG_PASSWORD")
    database: str = Field(default="postgres", description="SHARED_DLPG_DATABASE")
    sslmode: str = Field(default="require", description="SHARED_DLPG_SSLMODE: require unless the server is on loopback")
    workspace: str = Field(description="ACTIVELOOP_WORKSPACE_ID: the schema the tables live in")
    max_connections: int = Field(default=4, description="connections the pool may open")

    def lake(self) -> Lake:
        from dlk_assets.lake.deeplake_pg import pg_conninfo

        conninfo = pg_conninfo(self.host, self.port, self.user, self.password, self.database, self.sslmode)
        return _pg_lake(conninfo, self.workspace, self.max_connections)


@functools.cache
def _pg_lake(conninfo: str, workspace: str, max_connections: int) -> Lake:
    # One connection pool per database and process: assets call lake() many times in a run.
    from dlk_assets.lake.deeplake_pg import DeepLakePg

    return DeepLakePg(conninfo, workspace, max_size=max_connections)


class FileStoreResource(dg.ConfigurableResource):
    """Where raw bytes live. Subclasses return a backend implementing `FileStore`."""

    def store(self) -> FileStore:
        raise NotImplementedError(f"{type(self).__name__} must implement store()")


class LocalFileStoreResource(FileStoreResource):
    """Content-addressed files (default: `$DAGSTER_HOME/files`)."""

    root: str = Field(default="", description="Folder for the files; empty means $DAGSTER_HOME/files.")

    def root_path(self) -> Path:
        """The store's folder."""
        return _under_home(self.root, "files")

    def store(self) -> FileStore:
        return LocalFileStore(self.root_path())


class S3FileStoreResource(FileStoreResource, ObjectStorageAccess):
    """Content-addressed files in a bucket (same layout and ids as the local store)."""

    url: str = Field(description="DLK_FILES_URL: s3://bucket/prefix")

    def store(self) -> FileStore:
        from dlk_assets.lake.s3_files import S3FileStore

        return S3FileStore(self.url, self.s3_client())


class HttpFileStoreResource(FileStoreResource):
    """Files in a Deep Lake workspace through its HTTP `/files` API (the deeplake-pg profile). The
    profile fills the token with a `dg.EnvVar`. What the API does not say (each id's sha256, size and
    type; which id holds a sha256, so a re-run uploads nothing it already uploaded) is recorded in the
    workspace's `dlk_files` table when `index_lake` is set (the profile sets it: every machine and step
    pod shares it), else under `index_dir` on this machine."""

    base_url: str = Field(description="BASE_URL, e.g. https://api-beta.deeplake.ai")
    workspace: str = Field(description="ACTIVELOOP_WORKSPACE_ID")
    org_id: str = Field(description="ACTIVELOOP_ORG_ID")
    token: str = Field(description="TEST_PG_MANAGED_TOKEN: the bearer token")
    index_dir: str = Field(default="", description="folder for the sha256 -> file id index; empty means $DAGSTER_HOME/files-index")
    download_path: str = Field(default="download", description="download (the seed's path) or content (the current docs')")
    max_workers: int = Field(default=4, description="parallel uploads in put_many")
    index_lake: DeepLakePgLakeResource | None = Field(default=None, description=(
        "the Deep Lake PG lake whose workspace keeps the file records; empty keeps them under index_dir"))

    def store(self) -> FileStore:
        from dlk_assets.lake.file_index import PgFileIndex
        from dlk_assets.lake.http_files import HttpFileStore

        index = PgFileIndex(self.index_lake.lake()) if self.index_lake is not None else None
        return HttpFileStore(self.base_url, self.workspace, self.token, self.org_id, _under_home(self.index_dir, "files-index"),
                             download_path=self.download_path, max_workers=self.max_workers, index=index)


class ModelsResource(dg.ConfigurableResource):
    """The model registry: every source's target encoder (configuration) and active one (the lake)."""

    device: str = Field(default="auto", description="auto (CUDA when present), cpu, cuda or cuda:N")
    model_path: str = Field(default="", description="colqwen3 only: a local snapshot folder instead of the HF cache")
    registry_file: str = Field(default="", description="the registry file; empty means DLK_MODELS_FILE or $DAGSTER_HOME/models.yaml")

    def registry(self) -> ModelRegistry:
        """The registry as the file says now (read on every call, so a run sees the current targets)."""
        return ModelRegistry(load_settings(self.registry_file or None), self.device, self.model_path)


class ShardedSourceResource(dg.ConfigurableResource):
    """What every source read from parquet shards shares: the split, explicit files, the sensor's
    pace, the bad-item policy and where parquet footers are cached between processes."""

    split: str = "train"
    data_files: list[str] = Field(default_factory=list, description="parquet files of the same shape, instead of `dataset`")
    max_new_shards_per_tick: int = Field(default=4, description="how many new shards the sensor registers at once")
    on_bad_record: str = Field(default="skip", description="skip (count and report bad items) or fail (stop at the first)")
    footer_cache: str = Field(default="", description=(
        "JSON file keeping each data file's row-group sizes, so no run or sensor tick re-reads a footer it has seen; "
        "empty means $DAGSTER_HOME/sources/parquet-footers.json"))

    def footer_cache_path(self) -> str:
        """The footer cache file ('' keeps it in memory: no instance folder to put it in)."""
        if self.footer_cache:
            return self.footer_cache
        home = os.environ.get("DAGSTER_HOME")
        return str(Path(home) / "sources" / "parquet-footers.json") if home else ""


class CocoSourceResource(ShardedSourceResource):
    """The COCO stream and how it is cut into shards."""

    dataset: str = Field(default=BUNDLED_SAMPLE, description=(
        "'bundled-sample', a Hugging Face dataset id (e.g. detection-datasets/coco) or a local folder in hub layout"))
    shard_size: int = Field(default=3, description="items per shard; fixed for the life of a lake")
    max_image_pixels: int | None = Field(default=None, description=(
        "pixel budget per image: a larger image (a decompression bomb) is skipped and listed, never decoded; "
        f"empty means DLK_MAX_IMAGE_PIXELS or {DEFAULT_MAX_IMAGE_PIXELS}"))

    def stream(self) -> CocoStream:
        return CocoStream(self.dataset, self.split, tuple(self.data_files), self.footer_cache_path())


class SmartSpacesSourceResource(dg.ConfigurableResource):
    """Where SmartSpaces videos come from and how they are chunked and sampled."""

    dataset: str = Field(default=GENERATED_SAMPLE, description="'generated-sample' (made with ffmpeg on first use), "
                         "'folder' (a local mirror at `folder`), or a Hugging Face dataset repo, e.g. nvidia/PhysicalAI-SmartSpaces")
    base: str = Field(default=DATASET_BASE, description="folder inside the repository holding scene_*/camera_*/video.mp4")
    folder: str = Field(default="", description="local folder with the repository layout; empty means $DAGSTER_HOME/sources/smartspaces-sample")
    chunk_duration_s: float = Field(default=4.0, description="target chunk length (VIDEO_CHUNK_DURATION_S); 0 keeps videos whole")
    frames_per_chunk: int = Field(default=3, description="frames sampled from each chunk for its embedding")
    max_new_videos_per_tick: int = Field(default=4, description="how many new videos the sensor registers at once")

    def source(self) -> VideoSource:
        if self.dataset == GENERATED_SAMPLE:
            from dlk_assets.sources.smartspaces_sample import write_sample_videos

            root = _under_home(self.folder, "sources/smartspaces-sample")
            write_sample_videos(root)
            return FolderVideoSource(root, self.base)
        if self.dataset == "folder":
            if not self.folder:
                raise ValueError("dataset 'folder' needs `folder` set to the mirror's root")
            return FolderVideoSource(self.folder, self.base)
        return HubVideoSource(self.dataset, self.base)


class SweTraceSourceResource(ShardedSourceResource):
    """The SWE-trace stream, its shards, and how ingestion batches its writes."""

    dataset: str = Field(default="bundled-sample", description="'bundled-sample', a Hugging Face dataset id (e.g. "
                         "DCAgent/neulab-nebius-swe-agent-trajectories-sandboxes-traces-terminus-2) or a local folder in hub layout")
    shard_size: int = Field(default=100, description="traces per shard; fixed for the life of a lake")
    insert_batch_size: int = Field(default=32, description="rows per append (INSERT_BATCH_SIZE); halves on transient failures")
    max_insert_batch_size: int = Field(default=512, description="the batch size grows back up to this after clean batches")

    def stream(self) -> SweTraceStream:
        return SweTraceStream(self.dataset, self.split, tuple(self.data_files), self.footer_cache_path())


class DocumentSourceResource(dg.ConfigurableResource):
    """Folders of documents (Text, Markdown, HTML, JSON), one partition each; how their text is chunked;
    and the tenant every chunk belongs to."""

    folders: list[str] = Field(default_factory=list, description=(
        "folders to read, each one partition; empty means the bundled sample corpus and the project's own READMEs"))
    chunk_chars: int = Field(default=DEFAULT_CHUNK_CHARS, description="most characters per chunk (whole sentences)")
    overlap_chars: int = Field(default=DEFAULT_OVERLAP_CHARS, description=(
        "characters of whole sentences a chunk repeats from the one before; less than chunk_chars"))
    tenant_id: str = Field(default="local", description="DLK_LAKE_TENANT: the tenant of every chunk (metadata.tenant_id)")
    max_runs_per_tick: int = Field(default=8, description="how many new or changed folders the sensor runs at once")

    def document_folders(self) -> list[DocumentFolder]:
        """The configured folders (or the defaults); `ValueError` when two would share a partition key."""
        folders = [document_folder(path) for path in (self.folders or default_folders())]
        by_key: dict[str, DocumentFolder] = {}
        for folder in folders:
            if folder.key in by_key and by_key[folder.key].path != folder.path:
                raise ValueError(f"document folders {by_key[folder.key].path} and {folder.path} would both be "
                                 f"partition {folder.key!r}; rename or move one")
            by_key.setdefault(folder.key, folder)
        return list(by_key.values())

    def folder(self, key: str) -> DocumentFolder:
        """The configured folder whose partition key is `key`; `LookupError` naming the configured ones."""
        folders = self.document_folders()
        for folder in folders:
            if folder.key == key:
                return folder
        raise LookupError(f"partition {key!r} is not a configured documents folder (configured: "
                          f"{', '.join(f.key for f in folders)})")

    def checked_tenant(self) -> str:
        """The tenant id, refused when blank (every record must name its tenant)."""
        if not self.tenant_id.strip():
            raise ValueError("DocumentSourceResource.tenant_id is empty: every chunk needs a tenant (DLK_LAKE_TENANT)")
        return self.tenant_id

    def chunking(self) -> tuple[int, int]:
        """(chunk_chars, overlap_chars), checked."""
        check_chunk_settings(self.chunk_chars, self.overlap_chars)
        return self.chunk_chars, self.overlap_chars
