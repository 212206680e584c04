"""Content-addressed file store on S3-compatible object storage: `<prefix>/blobs/<sha256>` plus a
small JSON record per file id under `<prefix>/ids/`.

The same layout as the local store, so the same bytes get the same id on either. Credentials and
the endpoint come from the environment as boto3 reads them (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_REGION`). Large files are uploaded from disk with
boto3's managed multipart transfer, never held in memory whole; every read is checked against the
sha256 the key names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from dlk_assets.lake.files import (  # noqa: F401  (FileIntegrityError: what stream() and get() raise)
    FileIntegrityError,
    FileNotFoundInStore,
    FileStore,
    StoredFile,
    content_file_id,
    hash_file,
    parse_file_id,
    sha256_hex,
    verified_chunks,
)

MULTIPART_CHUNK_BYTES = 8 << 20  # S3 needs parts of at least 5 MiB; 8 MiB is boto3's default


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes at either end) of `s3://bucket/prefix`."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URL with a bucket: {url!r} (expected s3://bucket/prefix)")
    return parsed.netloc, parsed.path.strip("/")


class S3FileStore(FileStore):
    """Files in a bucket; `client` is a boto3 S3 client (default: one built from the environment)."""

    def __init__(self, url: str, client=None):
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_s3_url(url)
        self._client = client or boto3.client("s3")
        self._transfer = TransferConfig(multipart_threshold=MULTIPART_CHUNK_BYTES, multipart_chunksize=MULTIPART_CHUNK_BYTES,
                                        max_concurrency=4)

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _blob_key(self, sha256: str) -> str:
        return self._key("blobs", sha256)

    def _record_key(self, file_id: str) -> str:
        return self._key("ids", f"{file_id}.json")

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _record(self, sha256: str, size: int, filename: str, content_type: str) -> StoredFile:
        stored = StoredFile(content_file_id(sha256), sha256, size, filename, content_type)
        key = self._record_key(stored.file_id)
        if not self._exists(key):  # the first name a content was stored under stays its name
            body = json.dumps({"sha256": sha256, "size": size, "filename": filename, "content_type": content_type})
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json")
            return stored
        return self.stat(stored.file_id)

    def put(self, data: bytes, filename: str, content_type: str) -> StoredFile:
        sha256 = sha256_hex(data)
        if not self._exists(self._blob_key(sha256)):
            self._client.put_object(Bucket=self.bucket, Key=self._blob_key(sha256), Body=data, ContentType=content_type)
        return self._record(sha256, len(data), filename, content_type)

    def put_file(self, path: Path, filename: str, content_type: str) -> StoredFile:
        """Hash the file, then upload it from disk in 8 MiB parts unless the bucket holds those bytes."""
        sha256, size = hash_file(Path(path))
        if not self._exists(self._blob_key(sha256)):
            self._client.upload_file(str(path), self.bucket, self._blob_key(sha256), Config=self._transfer,
                                     ExtraArgs={"ContentType": content_type})
        return self._record(sha256, size, filename, content_type)

    def stat(self, file_id: str) -> StoredFile:
        from botocore.exceptions import ClientError

        file_id = parse_file_id(file_id)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._record_key(file_id))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundInStore(f"no file {file_id} in {self.url}") from None
            raise
        record = json.loads(body)
        return StoredFile(file_id, record["sha256"], int(record["size"]), record["filename"], record["content_type"])

    def get(self, file_id: str) -> bytes:
        return b"".join(self.stream(file_id))

    def stream(self, file_id: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes in chunks; the last chunk is handed over only once the whole sha256 matched."""
        stored = self.stat(file_id)
        body = self._client.get_object(Bucket=self.bucket, Key=self._blob_key(stored.sha256))["Body"]
        yield from verified_chunks(body.iter_chunks(chunk_size), file_id, stored.sha256, self.url)


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload that was started and never completed or aborted (its parts are billed)."""

    key: str
    upload_id: str
    age_s: float


def stale_multipart_uploads(client, url: str, older_than_s: float) -> list[PendingUpload]:
    """Multipart uploads under `url` (s3://bucket/prefix) started more than `older_than_s` ago: what a
    killed upload leaves behind. Younger ones may belong to a run in progress and are left alone."""
    bucket, prefix = parse_s3_url(url)
    now = datetime.now(UTC)
    pending = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
        for upload in page.get("Uploads", []):
            age = (now - upload["Initiated"]).total_seconds()
            if age >= older_than_s:
                pending.append(PendingUpload(upload["Key"], upload["UploadId"], age))
    return pending


def abort_multipart_upload(client, url: str, upload: PendingUpload) -> None:
    """Abort a pending upload, freeing its parts."""
    bucket, _ = parse_s3_url(url)
    client.abort_multipart_upload(Bucket=bucket, Key=upload.key, UploadId=upload.upload_id)
