"""File store on Deep Lake's managed HTTP files API (`{base_url}/workspaces/{workspace}/files`).

Upload is a multipart/form-data POST of the bytes in field `file`; the service answers `{"id": "<uuid>"}`
and chooses the id itself, so ids are not derived from content as in the local and S3 stores. The
service keeps no sha256 we can read back, so this store keeps a small local index under `index_dir`
(one JSON record per sha256 and one per file id, written atomically): a re-run finds the bytes it
already uploaded and skips them, and every read is checked against the sha256 recorded at upload.

Settings, as named in infra/.env.example: BASE_URL, TEST_PG_MANAGED_TOKEN (the bearer token),
ACTIVELOOP_ORG_ID, ACTIVELOOP_WORKSPACE_ID. Transient failures (429, 502, 503, 504, dropped
connections) are retried by urllib3's `Retry` with exponential backoff and jitter, honouring
Retry-After; uploads are retried too, as the body is re-read from disk (or memory) for each try.
Needs urllib3 >= 2.7 (`Retry(retry_after_max=...)`).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Self
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError
from urllib3.util.retry import Retry

from dlk_assets.lake.disk_space import ensure_free_space
from dlk_assets.lake.file_index import FileIndex, FolderFileIndex, LayeredFileIndex
from dlk_assets.lake.files import (
    FileIntegrityError,  # noqa: F401  (what get(), stream() and download() raise on a wrong body)
    FileNotFoundInStore,
    FileStore,
    StoredFile,
    hash_file,
    parse_file_id,
    sha256_hex,
    verified_chunks,
)

DOWNLOAD_PATHS = ("download", "content")  # the seed's path, and the one current docs name
RETRY_STATUSES = frozenset({429, 502, 503, 504})
CHUNK_BYTES = 1 << 20
UPLOAD_FIELD = "file"
# Enough stripes that parallel uploads of different bytes rarely wait on each other, while two puts of
# the same bytes always do (so the second finds the first's record instead of uploading again).
LOCK_STRIPES = 256


class FileServiceError(OSError):
    """The files API refused a request, or still failed after the retries; the message is one line
    naming the file, the URL and the status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class PutManyError(FileServiceError):
    """Some uploads of a `put_many` failed; the others went up and are indexed (a re-run skips them).
    `stored` holds a `StoredFile` or None per item, in order; `errors` the exception per failed index."""

    def __init__(self, message: str, stored: list[StoredFile | None], errors: dict[int, BaseException]):
        super().__init__(message)
        self.stored = stored
        self.errors = errors


class _BearerAuth(requests.auth.AuthBase):
    # As `auth`, not a session header: requests would otherwise let a ~/.netrc entry replace it, and it
    # drops `auth` (not session headers) when a redirect leaves the host.
    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _multipart_frame(boundary: str, filename: str, content_type: str) -> tuple[bytes, bytes]:
    """The bytes before and after the file's content in a one-field multipart/form-data body."""
    if any(c in content_type for c in "\r\n"):
        raise ValueError(f"content type {content_type!r} has a line break")
    # The HTML form encoding: `"`, CR and LF percent-encoded, the rest of the name sent as UTF-8.
    quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{UPLOAD_FIELD}"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


class _MultipartFileBody:
    """A multipart body whose content is read from disk as it is sent, never held whole.

    File-like on purpose: requests takes its length for Content-Length, and urllib3 `seek()`s it back
    to the start before each retry. The content is hashed on the way; a file that changed since it was
    hashed fails the upload (with `ValueError`, which neither library retries) instead of going up under
    a sha256 it does not have."""

    def __init__(self, path: Path, size: int, sha256: str, head: bytes, tail: bytes):
        self.path, self.size, self.sha256 = path, size, sha256
        self._head, self._tail = head, tail
        self._length = len(head) + size + len(tail)
        self._pos = 0
        self._file = None
        self._digest, self._hashed = hashlib.sha256(), 0

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:  # requests sends only objects with __iter__ as streams
        return iter(lambda: self.read(CHUNK_BYTES), b"")

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = min(max(base + offset, 0), self._length)
        if self._pos <= len(self._head):  # from the start again: so is the hash
            self._digest, self._hashed = hashlib.sha256(), 0
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._length - self._pos
        pieces = []
        while size > 0 and self._pos < self._length:
            head_end = len(self._head)
            file_end = head_end + self.size
            if self._pos < head_end:
                piece = self._head[self._pos:self._pos + size]
            elif self._pos < file_end:
                piece = self._read_file(self._pos - head_end, min(size, file_end - self._pos))
            else:
                piece = self._tail[self._pos - file_end:self._pos - file_end + size]
            pieces.append(piece)
            self._pos += len(piece)
            size -= len(piece)
        return b"".join(pieces)

    def _read_file(self, offset: int, size: int) -> bytes:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115  (closed by close(), after the last try)
        if self._file.tell() != offset:
            self._file.seek(offset)
        data = self._file.read(size)
        if len(data) < size:
            raise ValueError(f"{self.path} shrank while it was being uploaded; nothing was recorded")
        if offset == self._hashed:
            self._digest.update(data)
            self._hashed += len(data)
            if self._hashed == self.size and self._digest.hexdigest() != self.sha256:
                raise ValueError(f"{self.path} changed while it was being uploaded; nothing was recorded")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _short_reason(exc: BaseException) -> str:
    """The innermost useful cause of a requests/urllib3 error, on one line."""
    reason: BaseException = exc
    if isinstance(reason, requests.RequestException) and reason.args and isinstance(reason.args[0], BaseException):
        reason = reason.args[0]
    if isinstance(reason, MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    while isinstance(reason, ProtocolError) and len(reason.args) > 1 and isinstance(reason.args[1], BaseException):
        reason = reason.args[1]
    return " ".join(f"{type(reason).__name__}: {reason}".split())


def _guess_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class HttpFileStore(FileStore):
    """Files on Deep Lake's managed files API, with a local sha256 index under `index_dir`.

    `retries` counts the tries after the first (any mix of 429/502/503/504 answers and dropped
    connections); the wait before try n is `backoff_factor * 2**(n-1)` plus up to `backoff_jitter`
    seconds, at most `backoff_max`, or the server's Retry-After when it sends one (at most
    `retry_after_max`). `timeout` is (connect, read) seconds per try. The store holds a pool of
    connections: `close()` it (or use it as a context manager) when done."""

    def __init__(self, base_url: str, workspace: str, token: str, org_id: str, index_dir: str | Path,
                 download_path: str = "download", max_workers: int = 4, retries: int = 5, index: FileIndex | None = None,
                 backoff_factor: float = 0.5, backoff_max: float = 30.0, backoff_jitter: float = 0.5,
                 retry_after_max: float = 120.0, timeout: float | tuple[float, float] = (10.0, 300.0)):
        if not str(base_url).startswith(("http://", "https://")):
            raise ValueError(f"files API base URL must be http(s)://…, not {base_url!r} (set BASE_URL)")
        for value, setting in ((workspace, "ACTIVELOOP_WORKSPACE_ID"), (token, "TEST_PG_MANAGED_TOKEN"),
                               (org_id, "ACTIVELOOP_ORG_ID")):
            if not value:
                raise ValueError(f"the files API needs {setting}; it is empty")
        if download_path not in DOWNLOAD_PATHS:
            raise ValueError(f"download_path must be one of {DOWNLOAD_PATHS}, not {download_path!r}")
        if max_workers < 1 or retries < 0:
            raise ValueError(f"max_workers must be >= 1 and retries >= 0 (got {max_workers}, {retries})")
        self.base_url = str(base_url).rstrip("/")
        self.workspace, self.org_id, self.download_path = workspace, org_id, download_path
        self.max_workers, self.retries, self.timeout = max_workers, retries, timeout
        self.where = f"{self.base_url}/workspaces/{quote(workspace, safe='')}"
        # One index per service, org and workspace: ids from one workspace mean nothing in another.
        service = hashlib.sha256(f"{self.base_url}|{org_id}|{workspace}".encode()).hexdigest()[:12]
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in workspace)[:40]
        self.index_root = Path(index_dir) / f"{slug}-{service}"
        folder = FolderFileIndex(self.index_root, self._staging)
        self.index = LayeredFileIndex(index, folder) if index is not None else folder
        self._stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]

        retry = Retry(total=retries, allowed_methods=frozenset({"GET", "POST"}), status_forcelist=RETRY_STATUSES,
                      backoff_factor=backoff_factor, backoff_max=backoff_max, backoff_jitter=backoff_jitter,
                      respect_retry_after_header=True, retry_after_max=retry_after_max,
                      raise_on_status=False)  # the last answer comes back, so the error names its status
        # One session for all threads: its connection pool is thread-safe and holds one connection per
        # worker; nothing here uses the per-session state (cookies) that is not.
        self._session = requests.Session()
        self._session.auth = _BearerAuth(token)
        self._session.headers.update({"X-Activeloop-Org-Id": org_id, "User-Agent": "dlk-assets"})
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max_workers)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # The local index.

    @property
    def _staging(self) -> Path:
        return self.index_root / "staging"

    def _known(self, sha256: str) -> StoredFile | None:
        return self.index.by_sha256(sha256)

    def _remember(self, stored: StoredFile) -> StoredFile:
        # The record that holds these bytes afterwards: when another machine uploaded the same bytes at
        # the same moment and recorded its id first, that id is the one every reader finds, so it is
        # the one to hand back (this upload's id then stays unused on the service).
        self.index.remember(stored)
        return self.index.by_sha256(stored.sha256) or stored

    def _lock(self, sha256: str) -> threading.Lock:
        return self._stripes[int(sha256[:8], 16) % LOCK_STRIPES]

    # Requests.

    def _tries(self, response: requests.Response) -> int:
        retries = getattr(response.raw, "retries", None)
        return len(retries.history) + 1 if retries is not None else 1

    def _failure(self, response: requests.Response, what: str) -> FileServiceError:
        status = response.status_code
        hints = {
            401: "the bearer token was not accepted; check TEST_PG_MANAGED_TOKEN",
            403: f"the token may not use org {self.org_id!r} / workspace {self.workspace!r}; "
                 "check ACTIVELOOP_ORG_ID and ACTIVELOOP_WORKSPACE_ID",
            404: f"no such workspace or path at {self.base_url}; check ACTIVELOOP_WORKSPACE_ID and BASE_URL",
        }
        detail = hints.get(status) or " ".join(next(response.iter_content(300), b"").decode("utf-8", "replace").split())
        tries = self._tries(response)
        after = f" after {tries} tries" if tries > 1 else ""
        return FileServiceError(f"{what} failed{after}: HTTP {status} {response.reason}" + (f" ({detail})" if detail else ""),
                                status)

    def _upload(self, body: bytes | _MultipartFileBody, boundary: str, filename: str) -> str:
        """POST one multipart body; the id the service gave it."""
        url = f"{self.where}/files"
        what = f"upload of {filename!r} to {url}"
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        try:
            response = self._session.post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            exhausted = bool(exc.args) and isinstance(exc.args[0], MaxRetryError)
            after = f" after {self.retries + 1} tries" if exhausted else ""
            raise FileServiceError(f"{what} failed{after}: {_short_reason(exc)}") from None
        with response:
            if not response.ok:
                raise self._failure(response, what)
            snippet = " ".join(response.content[:300].decode("utf-8", "replace").split())
            try:
                answer = response.json()
            except ValueError:
                raise FileServiceError(f"{what}: the answer is not JSON (HTTP {response.status_code}, "
                                       f"{response.headers.get('Content-Type')}): {snippet!r}") from None
            try:
                return str(uuid.UUID(str(answer["id"])))
            except (TypeError, KeyError, ValueError):
                raise FileServiceError(f'{what}: the answer has no UUID "id" (expected {{"id": "<uuid>"}}): '
                                       f"{snippet!r}") from None

    # FileStore.

    def put(self, data: bytes, filename: str, content_type: str) -> StoredFile:
        """Upload bytes unless the index shows they went up already (then the first upload's record,
        name included, is returned)."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or not data:
            raise ValueError(f"cannot store {filename!r}: no bytes")
        data, name = bytes(data), os.path.basename(filename)
        sha256 = sha256_hex(data)
        with self._lock(sha256):
            if (known := self._known(sha256)) is not None:
                return known
            boundary = f"dlk-{uuid.uuid4().hex}"
            head, tail = _multipart_frame(boundary, name, content_type)
            file_id = self._upload(head + data + tail, boundary, name)
            return self._remember(StoredFile(file_id, sha256, len(data), name, content_type))

    def put_file(self, path: Path, filename: str, content_type: str) -> StoredFile:
        """Hash the file, then, unless the index shows those bytes went up already, stream it from
        disk (a multi-GB video is never held in memory)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"cannot store {filename!r}: {path} is not a file")
        sha256, size = hash_file(path)
        if not size:
            raise ValueError(f"cannot store {filename!r}: no bytes")
        name = os.path.basename(filename)
        with self._lock(sha256):
            if (known := self._known(sha256)) is not None:
                return known
            boundary = f"dlk-{uuid.uuid4().hex}"
            body = _MultipartFileBody(path, size, sha256, *_multipart_frame(boundary, name, content_type))
            try:
                file_id = self._upload(body, boundary, name)
            finally:
                body.close()
            return self._remember(StoredFile(file_id, sha256, size, name, content_type))

    def put_many(self, items: Iterable[Path | str | tuple[bytes | Path | str, str, str]]) -> list[StoredFile]:
        """Upload many files on `max_workers` threads; the results in the order of `items`.

        An item is a path (its name and a content type guessed from it) or `(bytes or path, filename,
        content_type)`. Every item is tried; if some fail, `PutManyError` says how many, with the first
        error, after the others are uploaded and indexed."""
        jobs: list[Callable[[], StoredFile]] = []
        for item in items:
            if isinstance(item, (str, Path)):
                path = Path(item)
                jobs.append(partial(self.put_file, path, path.name, _guess_type(path)))
            elif isinstance(item, tuple) and len(item) == 3:
                source, filename, content_type = item
                put = self.put if isinstance(source, (bytes, bytearray, memoryview)) else self.put_file
                jobs.append(partial(put, source, filename, content_type))
            else:
                raise TypeError(f"put_many takes paths or (bytes or path, filename, content_type), not {item!r}")
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="dlk-http-files") as pool:
            futures = [pool.submit(job) for job in jobs]
        errors = {i: f.exception() for i, f in enumerate(futures) if f.exception() is not None}
        stored = [None if i in errors else f.result() for i, f in enumerate(futures)]
        if errors:
            first = errors[min(errors)]
            raise PutManyError(f"{len(errors)} of {len(jobs)} uploads to {self.where} failed ({len(jobs) - len(errors)} "
                               f"went up and are indexed, so a re-run skips them); first, item {min(errors)}: {first}",
                               stored, errors)
        return stored

    def stat(self, file_id: str) -> StoredFile:
        """The record kept when a store sharing this index uploaded the file (the API gives no sha256 back,
        so a file uploaded by anything else cannot be checked, and is not known here)."""
        file_id = parse_file_id(file_id)
        stored = self.index.by_id(file_id)
        if stored is None:
            raise FileNotFoundInStore(f"no file {file_id} in {self.where}: its file index has no record of it")
        return stored

    def get(self, file_id: str) -> bytes:
        """The whole file, sha256-checked (for small files; `download` writes large ones to disk)."""
        return b"".join(self.stream(file_id))

    def stream(self, file_id: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The bytes in chunks as they arrive; the last chunk is handed over only once the whole sha256
        matched (`FileIntegrityError` otherwise)."""
        stored = self.stat(file_id)
        url = f"{self.where}/files/{stored.file_id}/{self.download_path}"
        what = f"download of file {stored.file_id} ({stored.filename!r}) from {url}"
        try:
            response = self._session.get(url, stream=True, timeout=self.timeout)
        except requests.RequestException as exc:
            exhausted = bool(exc.args) and isinstance(exc.args[0], MaxRetryError)
            after = f" after {self.retries + 1} tries" if exhausted else ""
            raise FileServiceError(f"{what} failed{after}: {_short_reason(exc)}") from None
        with response:
            if response.status_code == 404:
                raise FileNotFoundInStore(f"no file {stored.file_id} in {self.where} (HTTP 404; the index knew it)")
            if not response.ok:
                raise self._failure(response, what)
            try:
                yield from verified_chunks(response.iter_content(chunk_size), stored.file_id, stored.sha256, self.where)
            except requests.RequestException as exc:
                raise FileServiceError(f"{what} broke off: {_short_reason(exc)}") from None

    def download(self, file_id: str, path: Path) -> Path:
        """Write the file to `path` through a temporary file beside it, renamed into place only once the
        sha256 matched: a failed download leaves nothing new at `path` (nor a partial file)."""
        path = Path(path)
        stored = self.stat(file_id)
        ensure_free_space(path.parent, stored.size, f"file {stored.filename!r}", amplification=1)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in self.stream(file_id):
                    out.write(chunk)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path
