"""A stand-in for Deep Lake's managed `/files` API, on 127.0.0.1, for the HTTP file store's tests.

It follows the documented protocol: `POST /workspaces/{workspace}/files` with the bytes in multipart
field `file`, a Bearer token and an `X-Activeloop-Org-Id` header, answered `{"id": "<uuid>"}`; and
`GET /workspaces/{workspace}/files/{id}/download` (or `/content`). Faults can be queued for the next
requests (an error status with Retry-After, a dropped connection, a wrong download body, an odd
answer to an upload), and every request is recorded so a test can count tries.
"""

from __future__ import annotations

import email.message
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

UPLOAD = re.compile(r"/workspaces/(?P<workspace>[^/]+)/files")
DOWNLOAD = re.compile(r"/workspaces/(?P<workspace>[^/]+)/files/(?P<file_id>[^/]+)/(?:download|content)")


@dataclass
class Fault:
    """What to do instead of (or to) the next request of `method` (any method when None)."""

    kind: str  # "status", "drop", "wrong_body" or "answer"
    method: str | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it; `status` is None when the connection was dropped unanswered."""

    method: str
    path: str
    status: int | None
    fault: str | None


@dataclass(frozen=True)
class Upload:
    """A file the server holds."""

    data: bytes
    filename: str | None
    content_type: str


def parse_multipart(body: bytes, content_type: str) -> dict[str, Upload]:
    """The fields of a multipart/form-data body, byte-exact (the email package may rewrite line ends)."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not boundary:
        raise ValueError(f"not multipart/form-data with a boundary: {content_type!r}")
    sections = (b"\r\n" + body).split(b"\r\n--" + str(boundary).encode())
    fields = {}
    for section in sections[1:]:
        if section.startswith(b"--"):
            return fields
        head, blank, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not blank:
            raise ValueError("a part without a blank line after its headers")
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not name:
            raise ValueError("a part without a name")
        fields[str(name)] = Upload(data, headers.get_filename(), headers.get_content_type())
    raise ValueError("no closing boundary")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server: the client's connection pool is exercised
    timeout = 5  # an idle kept-alive connection does not hold its thread past the test

    def do_GET(self):
        self.server.api.handle(self)

    def do_POST(self):
        self.server.api.handle(self)

    def log_message(self, format, *args):
        pass


class FilesApiServer:
    """The stand-in on a free loopback port, as a context manager; `base_url` once entered."""

    def __init__(self, token: str = "test-token", org_id: str = "test-org", workspace: str = "test-workspace",
                 upload_delay_s: float = 0.0):
        self.token, self.org_id, self.workspace = token, org_id, workspace
        self.upload_delay_s = upload_delay_s
        self.files: dict[str, Upload] = {}
        self.seen: list[Seen] = []
        self.max_concurrent_uploads = 0
        self._active_uploads = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # Faults and what was seen.

    def fail(self, status: int, times: int = 1, method: str | None = None, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with `status` (and a Retry-After header when given)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self._queue(times, Fault("status", method, status, headers, b'{"detail": "injected"}'))

    def drop(self, times: int = 1, method: str | None = None) -> None:
        """Read the next `times` requests whole, then close their connections without answering."""
        self._queue(times, Fault("drop", method))

    def corrupt_download(self, times: int = 1) -> None:
        """Serve the next `times` downloads with bytes that differ from the file's (same length)."""
        self._queue(times, Fault("wrong_body", "GET"))

    def answer_upload(self, body: bytes, content_type: str = "application/json", status: int = 200) -> None:
        """Answer the next upload with this body instead of `{"id": ...}` (nothing is stored)."""
        self._queue(1, Fault("answer", "POST", status, body=body, content_type=content_type))

    def forget(self, file_id: str) -> None:
        """Delete a file, as if removed on the service."""
        with self._lock:
            del self.files[file_id]

    def count(self, method: str | None = None) -> int:
        """Requests seen (of `method`), faulted and dropped ones included."""
        return sum(1 for s in self.seen if method in (None, s.method))

    @property
    def uploads(self) -> int:
        """Uploads stored."""
        return sum(1 for s in self.seen if s.method == "POST" and s.status == 200 and s.fault is None)

    def _queue(self, times: int, fault: Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            if self._faults and self._faults[0].method in (None, method):
                return self._faults.popleft()
        return None

    # Requests.

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        if "chunked" in h.headers.get("Transfer-Encoding", ""):
            return self._answer(h, 411, {"detail": "chunked uploads are not accepted; send Content-Length"}, close=True)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        path = urlsplit(h.path).path
        fault = self._take_fault(h.command)
        if fault is not None and fault.kind == "drop":
            self._record(h, path, None, fault)
            h.close_connection = True
            return None
        if fault is not None and fault.kind == "status":
            return self._answer(h, fault.status, fault.body, path=path, fault=fault, headers=fault.headers)
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(h, 401, {"detail": "invalid token"}, path=path)
        if h.headers.get("X-Activeloop-Org-Id") != self.org_id:
            return self._answer(h, 403, {"detail": "no access to this organization"}, path=path)
        if h.command == "POST" and (match := UPLOAD.fullmatch(path)) and match["workspace"] == self.workspace:
            return self._upload(h, body, path, fault)
        if h.command == "GET" and (match := DOWNLOAD.fullmatch(path)) and match["workspace"] == self.workspace:
            return self._download(h, match["file_id"], path, fault)
        return self._answer(h, 404, {"detail": "not found"}, path=path)

    def _upload(self, h: BaseHTTPRequestHandler, body: bytes, path: str, fault: Fault | None) -> None:
        content_type = h.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return self._answer(h, 415, {"detail": f"expected multipart/form-data, got {content_type!r}"}, path=path)
        try:
            upload = parse_multipart(body, content_type)["file"]
        except (ValueError, KeyError) as exc:
            return self._answer(h, 400, {"detail": f"bad multipart body: {exc}"}, path=path)
        if fault is not None and fault.kind == "answer":
            return self._answer(h, fault.status, fault.body, path=path, fault=fault, content_type=fault.content_type)
        with self._lock:
            self._active_uploads += 1
            self.max_concurrent_uploads = max(self.max_concurrent_uploads, self._active_uploads)
        try:
            time.sleep(self.upload_delay_s)
            file_id = str(uuid.uuid4())
            with self._lock:
                self.files[file_id] = upload
        finally:
            with self._lock:
                self._active_uploads -= 1
        return self._answer(h, 200, {"id": file_id}, path=path)

    def _download(self, h: BaseHTTPRequestHandler, file_id: str, path: str, fault: Fault | None) -> None:
        with self._lock:
            upload = self.files.get(file_id)
        if upload is None:
            return self._answer(h, 404, {"detail": f"no file {file_id}"}, path=path, fault=fault)
        data = upload.data
        if fault is not None and fault.kind == "wrong_body":
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        return self._answer(h, 200, data, path=path, fault=fault, content_type=upload.content_type)

    def _answer(self, h: BaseHTTPRequestHandler, status: int, body: bytes | dict, path: str = "", fault: Fault | None = None,
                headers: dict[str, str] | None = None, content_type: str = "application/json", close: bool = False) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self._record(h, path or urlsplit(h.path).path, status, fault)
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if close:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        h.wfile.write(data)

    def _record(self, h: BaseHTTPRequestHandler, path: str, status: int | None, fault: Fault | None) -> None:
        with self._lock:
            self.seen.append(Seen(h.command, path, status, fault.kind if fault else None))
