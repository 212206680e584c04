"""The file store on a real S3-compatible server (moto on 127.0.0.1): content addressing, multipart
uploads from disk, and sha256-checked reads."""

import pytest

from dlk_assets.lake.files import FileNotFoundInStore
from dlk_assets.lake.local_files import LocalFileStore
from dlk_assets.lake.s3_files import FileIntegrityError, S3FileStore


def keys(client, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="dlk", Prefix=prefix).get("Contents", []))


def test_same_bytes_same_id_as_the_local_store_and_stored_once(s3, tmp_path):
    store = S3FileStore("s3://dlk/lake/files")
    first = store.put(b"a cat on a mat", "cat.txt", "text/plain")
    again = store.put(b"a cat on a mat", "other-name.txt", "text/plain")
    assert first == again and first.file_id == LocalFileStore(tmp_path).put(b"a cat on a mat", "cat.txt", "text/plain").file_id
    assert keys(s3, "lake/files/") == [f"lake/files/blobs/{first.sha256}", f"lake/files/ids/{first.file_id}.json"]
    assert store.get(first.file_id) == b"a cat on a mat" and store.stat(first.file_id).filename == "cat.txt"


def test_a_large_file_goes_up_in_parts_from_disk_and_comes_back_whole(s3, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(range(256)) * (20 * 4096))  # 20 MiB: three 8 MiB parts
    store = S3FileStore("s3://dlk/files")
    stored = store.put_file(path, "clip.mp4", "video/mp4")
    head = s3.head_object(Bucket="dlk", Key=f"files/blobs/{stored.sha256}")
    assert head["ETag"].strip('"').endswith("-3") and head["ContentLength"] == stored.size == 20 << 20  # a multipart upload
    assert store.download(stored.file_id, tmp_path / "back.mp4").read_bytes() == path.read_bytes()
    assert store.put_file(path, "clip.mp4", "video/mp4") == stored  # already there: nothing uploaded again


def test_bytes_that_do_not_match_their_sha256_are_never_handed_over_whole(s3):
    store = S3FileStore("s3://dlk/files")
    stored = store.put(b"x" * (3 << 20), "x.bin", "application/octet-stream")
    s3.put_object(Bucket="dlk", Key=f"files/blobs/{stored.sha256}", Body=b"y" * (3 << 20))  # bit rot, or a bad writer
    chunks = store.stream(stored.file_id)
    received = [next(chunks), next(chunks)]  # every chunk but the last
    with pytest.raises(FileIntegrityError, match=f"does not match its sha256 {stored.sha256}"):
        next(chunks)
    assert sum(map(len, received)) < stored.size
    with pytest.raises(FileIntegrityError):
        store.get(stored.file_id)


def test_unknown_ids_and_bad_urls_are_clear_errors(s3):
    store = S3FileStore("s3://dlk/files")
    with pytest.raises(FileNotFoundInStore, match="no file 00000000-0000-0000-0000-000000000000 in s3://dlk/files"):
        store.stat("00000000-0000-0000-0000-000000000000")
    with pytest.raises(FileNotFoundInStore, match="not a file id"):
        store.get("../../etc/passwd")
    with pytest.raises(ValueError, match="expected s3://bucket/prefix"):
        S3FileStore("/var/lake/files")


def test_the_resource_builds_the_store_from_its_url_and_the_environment(s3):
    from dlk_assets.resources import S3FileStoreResource

    store = S3FileStoreResource(url="s3://dlk/team/files").store()
    stored = store.put(b"through the resource", "r.txt", "text/plain")
    assert keys(s3, "team/files/ids/") == [f"team/files/ids/{stored.file_id}.json"]
