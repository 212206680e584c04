"""The HTTP file store against a stand-in of Deep Lake's `/files` API on 127.0.0.1: real multipart
uploads, retries through urllib3 on injected faults, the local sha256 index, and checked downloads."""

import os
import time
from pathlib import Path

import pytest
import requests

from dlk_assets.lake.files import FileIntegrityError, FileNotFoundInStore, sha256_hex
from dlk_assets.lake.http_files import (
    FileServiceError,
    HttpFileStore,
    PutManyError,
    _multipart_frame,
    _MultipartFileBody,
)

from .files_api_server import FilesApiServer, parse_multipart


@pytest.fixture
def server():
    with FilesApiServer() as running:
        yield running


def make_store(server: FilesApiServer, index_dir: Path, **overrides) -> HttpFileStore:
    """A store on the stand-in, with retries that wait milliseconds, not seconds."""
    settings = {"base_url": server.base_url, "workspace": server.workspace, "token": server.token,
                "org_id": server.org_id, "index_dir": index_dir, "retries": 3, "backoff_factor": 0.001,
                "backoff_jitter": 0.001, "retry_after_max": 5, "timeout": 5}
    return HttpFileStore(**{**settings, **overrides})


def shown_alone(error: BaseException) -> bool:
    """One line, and Python prints no chain of library exceptions above it."""
    return "\n" not in str(error) and error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.fixture
def store(server, tmp_path):
    with make_store(server, tmp_path / "index") as opened:
        yield opened


def test_bytes_and_a_file_on_disk_go_up_as_multipart_and_come_back_with_their_sha256(server, store, tmp_path):
    data = os.urandom(100_000)  # every byte value, CR and LF included: the multipart framing must not touch them
    stored = store.put(data, "dir/cat.jpg", "image/jpeg")
    held = server.files[stored.file_id]
    assert (held.data, held.filename, held.content_type) == (data, "cat.jpg", "image/jpeg")
    assert stored.sha256 == sha256_hex(data) and stored.size == len(data) and store.get(stored.file_id) == data
    assert store.stat(stored.file_id) == stored

    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(3 << 20))
    from_disk = store.put_file(path, "clip.mp4", "video/mp4")
    assert server.files[from_disk.file_id].data == path.read_bytes()
    back = store.download(from_disk.file_id, tmp_path / "back.mp4")
    assert sha256_hex(back.read_bytes()) == from_disk.sha256 == sha256_hex(path.read_bytes())
    with make_store(server, tmp_path / "index", download_path="content") as other:  # the path current docs name
        assert other.get(from_disk.file_id) == path.read_bytes()
    assert [s.path.rsplit("/", 1)[-1] for s in server.seen if s.method == "GET"] == ["download", "download", "content"]


def test_bytes_already_uploaded_are_not_uploaded_again_even_by_a_later_run(server, store, tmp_path):
    first = store.put(b"a cat on a mat", "cat.txt", "text/plain")
    (tmp_path / "same.txt").write_bytes(b"a cat on a mat")
    assert store.put(b"a cat on a mat", "other-name.txt", "text/plain") == first
    assert store.put_file(tmp_path / "same.txt", "same.txt", "text/plain") == first
    with make_store(server, tmp_path / "index") as rerun:
        assert rerun.put(b"a cat on a mat", "cat.txt", "text/plain") == first
    assert server.uploads == 1
    with FilesApiServer(workspace="another") as elsewhere, make_store(elsewhere, tmp_path / "index") as other:
        assert other.put(b"a cat on a mat", "cat.txt", "text/plain").file_id != first.file_id  # its own index
        assert elsewhere.uploads == 1


def test_429_waits_the_retry_after_then_succeeds(server, store):
    server.fail(429, retry_after=1)
    started = time.monotonic()
    stored = store.put(b"rate limited", "a.txt", "text/plain")
    assert time.monotonic() - started >= 0.9
    assert server.count("POST") == 2 and server.uploads == 1 and store.get(stored.file_id) == b"rate limited"


def test_a_long_retry_after_is_capped(server, tmp_path):
    server.fail(429, retry_after=3600)
    started = time.monotonic()
    with make_store(server, tmp_path / "index", retry_after_max=0.2) as store:
        store.put(b"rate limited", "a.txt", "text/plain")
    assert time.monotonic() - started < 3 and server.uploads == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_then_success_uploads_a_file_from_disk_whole(server, store, tmp_path, status):
    path = tmp_path / "clip.bin"
    path.write_bytes(os.urandom(300_000))
    server.fail(status, times=2)
    stored = store.put_file(path, "clip.bin", "application/octet-stream")
    assert server.count("POST") == 3 and server.files[stored.file_id].data == path.read_bytes()  # re-read each try


def test_a_dropped_connection_is_retried_for_uploads_and_downloads(server, store, tmp_path):
    path = tmp_path / "clip.bin"
    path.write_bytes(os.urandom(300_000))
    server.drop(method="POST")
    stored = store.put_file(path, "clip.bin", "application/octet-stream")
    assert [s.status for s in server.seen] == [None, 200] and server.files[stored.file_id].data == path.read_bytes()
    server.drop(method="GET")
    assert store.get(stored.file_id) == path.read_bytes() and server.count("GET") == 2


def test_persistent_errors_end_in_one_clear_line_after_the_retry_budget(server, store):
    server.fail(503, times=4)
    with pytest.raises(FileServiceError) as failed:
        store.put(b"never", "never.txt", "text/plain")
    message = str(failed.value)
    assert "'never.txt'" in message and "after 4 tries: HTTP 503" in message
    assert failed.value.status == 503 and shown_alone(failed.value)
    assert server.count("POST") == 4

    server.drop(times=4)
    with pytest.raises(FileServiceError, match=r"'gone.txt' .* failed after 4 tries: RemoteDisconnected") as dropped:
        store.put(b"gone", "gone.txt", "text/plain")
    assert shown_alone(dropped.value)
    assert server.count("POST") == 8 and server.uploads == 0


def test_a_wrong_body_is_an_integrity_error_and_download_leaves_nothing(server, store, tmp_path):
    data = os.urandom(2 << 20)
    stored = store.put(data, "x.bin", "application/octet-stream")
    server.corrupt_download()
    with pytest.raises(FileIntegrityError, match=f"does not match its sha256 {stored.sha256}"):
        store.get(stored.file_id)
    target = tmp_path / "out" / "x.bin"
    target.parent.mkdir()
    server.corrupt_download()
    with pytest.raises(FileIntegrityError):
        store.download(stored.file_id, target)
    assert list(target.parent.iterdir()) == []  # neither the file nor a partial one
    target.write_bytes(b"an older copy")
    server.corrupt_download()
    with pytest.raises(FileIntegrityError):
        store.download(stored.file_id, target)
    assert list(target.parent.iterdir()) == [target] and target.read_bytes() == b"an older copy"
    assert store.download(stored.file_id, target).read_bytes() == data


def test_missing_files_are_file_not_found(server, store):
    stored = store.put(b"soon gone", "a.txt", "text/plain")
    server.forget(stored.file_id)
    with pytest.raises(FileNotFoundInStore, match=f"no file {stored.file_id} .*HTTP 404"):
        store.get(stored.file_id)
    with pytest.raises(FileNotFoundInStore, match="has no record of it"):
        store.stat("00000000-0000-0000-0000-000000000000")
    with pytest.raises(FileNotFoundInStore, match="not a file id"):
        store.get("../../etc/passwd")


def test_a_wrong_token_or_org_is_a_clear_error_without_retries(server, tmp_path):
    refusal = r"'a.txt' .* failed: HTTP 401 .*TEST_PG_MANAGED_TOKEN"
    with make_store(server, tmp_path / "index", token="wrong") as store, pytest.raises(FileServiceError, match=refusal) as refused:
        store.put(b"a", "a.txt", "text/plain")
    assert refused.value.status == 401 and server.count() == 1
    with make_store(server, tmp_path / "index", org_id="other-org") as store, \
            pytest.raises(FileServiceError, match="HTTP 403 .*ACTIVELOOP_ORG_ID"):
        store.put(b"a", "a.txt", "text/plain")
    assert server.uploads == 0


def test_an_answer_without_a_uuid_id_is_a_clear_error_and_nothing_is_indexed(server, store):
    server.answer_upload(b"<html>maintenance</html>", content_type="text/html")
    with pytest.raises(FileServiceError, match=r"'a.txt' .*the answer is not JSON .*maintenance"):
        store.put(b"a", "a.txt", "text/plain")
    server.answer_upload(b'{"file_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}')
    with pytest.raises(FileServiceError, match='no UUID "id"'):
        store.put(b"a", "a.txt", "text/plain")
    server.answer_upload(b'{"id": "42"}')
    with pytest.raises(FileServiceError, match='no UUID "id"'):
        store.put(b"a", "a.txt", "text/plain")
    assert store.get(store.put(b"a", "a.txt", "text/plain").file_id) == b"a" and server.uploads == 1


def test_put_many_uploads_in_parallel_within_its_bound(tmp_path):
    paths = []
    for i in range(10):
        paths.append(tmp_path / f"frame-{i}.png")
        paths[-1].write_bytes(os.urandom(1000) + bytes([i]))
    items = paths + [(f"caption {i}".encode(), f"caption-{i}.txt", "text/plain") for i in range(10)]
    with FilesApiServer(upload_delay_s=0.05) as server, make_store(server, tmp_path / "index", max_workers=4) as store:
        stored = store.put_many(items)
        assert [s.filename for s in stored] == [p.name for p in paths] + [f"caption-{i}.txt" for i in range(10)]
        assert stored[0].content_type == "image/png" and server.uploads == 20
        assert 2 <= server.max_concurrent_uploads <= 4
        assert [server.files[s.file_id].data for s in stored[:10]] == [p.read_bytes() for p in paths]
        assert store.put_many(items) == stored and server.uploads == 20  # a re-run skips them all


def test_put_many_reports_failures_after_the_rest_went_up(server, store, tmp_path):
    items = [(b"one", "1.txt", "text/plain"), tmp_path / "missing.bin", (b"three", "3.txt", "text/plain")]
    with pytest.raises(PutManyError, match=r"1 of 3 uploads .* failed \(2 went up.*item 1: .*missing.bin") as failed:
        store.put_many(items)
    assert failed.value.stored[1] is None and [s.filename for s in failed.value.stored if s] == ["1.txt", "3.txt"]
    assert server.uploads == 2


def test_the_streamed_body_rewinds_and_refuses_a_file_that_changed(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(50_000))
    head, tail = _multipart_frame("b0undary", "a.bin", "application/octet-stream")
    body = _MultipartFileBody(path, 50_000, sha256_hex(path.read_bytes()), head, tail)
    whole = body.read(7) + body.read()
    assert len(whole) == len(body) and whole == head + path.read_bytes() + tail
    body.seek(0)
    assert b"".join(iter(body)) == whole
    body.close()
    assert parse_multipart(whole, "multipart/form-data; boundary=b0undary")["file"].data == path.read_bytes()
    changed = _MultipartFileBody(path, 50_000, "0" * 64, head, tail)
    with pytest.raises(ValueError, match="changed while it was being uploaded"):
        changed.read()
    changed.close()


def test_the_stand_in_refuses_what_the_service_refuses(server):
    url = f"{server.base_url}/workspaces/{server.workspace}/files"
    auth = {"Authorization": f"Bearer {server.token}", "X-Activeloop-Org-Id": server.org_id}
    assert requests.post(url, json={"file": "x"}, headers=auth, timeout=5).status_code == 415
    assert requests.post(url, files={"file": b"x"}, timeout=5).status_code == 401
    assert requests.post(url, files={"file": b"x"}, headers={**auth, "X-Activeloop-Org-Id": "no"}, timeout=5).status_code == 403
    assert requests.post(url, files={"other": b"x"}, headers=auth, timeout=5).status_code == 400
    assert requests.post(url, files={"file": ("x.txt", b"x")}, headers=auth, timeout=5).status_code == 200
