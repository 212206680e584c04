"""The `object-storage` profile end to end: `dlk demo` with the lake and the file store in a real
S3-compatible server (moto on 127.0.0.1), chosen by environment variables alone.

The whole sample graph is materialized, searched and sliced; nothing may land in the local lake or
file store folders under $DAGSTER_HOME.
"""

import hashlib
import json
from types import SimpleNamespace

import dagster as dg
import pytest

from dlk_assets.cli import main as dlk
from dlk_assets.defs.coco.tables import COCO_FILES
from dlk_assets.lake.deeplake_local import ObjectStoreDeepLake
from dlk_assets.profile import current_profile, profile_resources, resolved_resources
from dlk_assets.sources.coco_sample import SAMPLE_ANNOTATIONS

from .conftest import make_home
from .local_servers import moto_server

EXPECTED_TABLES = {"coco_files", "coco_images", "smartspaces_video_files", "smartspaces_video_chunks", "swe_traces", "swe_memory"}


@pytest.fixture(scope="module")
def on_s3(tmp_path_factory):
    import boto3

    home = make_home(tmp_path_factory.mktemp("objstore") / "dagster_home")
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as patch:
        settings = {"DAGSTER_HOME": str(home), "DLK_PROFILE": "object-storage", "DLK_LAKE_URL": "s3://dlk/lake",
                    "DLK_FILES_URL": "s3://dlk/files", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
        for name, value in settings.items():
            patch.setenv(name, value)
        for name in ("DLK_MODELS_FILE", "DLK_IMAGE_ENCODER", "DLK_TEXT_ENCODER", "DLK_DEVICE"):
            patch.delenv(name, raising=False)
        client = boto3.client("s3")
        client.create_bucket(Bucket="dlk")
        patch.chdir(home.parent)
        assert dlk(["demo", "--k", "3"]) == 0
        yield SimpleNamespace(home=home, client=client, resources=resolved_resources())


def keys_under(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="dlk", Prefix=prefix)
    return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


def test_the_profile_is_chosen_by_environment_and_secrets_stay_env_vars(on_s3):
    assert current_profile().name == "object-storage"
    declared = profile_resources()
    # The UI shows where a secret comes from, never its value.
    assert isinstance(declared["lake"].aws_secret_access_key, dg.EnvVar)
    assert isinstance(declared["files"].aws_secret_access_key, dg.EnvVar)
    assert on_s3.resources["lake"].aws_secret_access_key == "testing"
    assert isinstance(on_s3.resources["lake"].lake(), ObjectStoreDeepLake)


def test_every_table_and_file_is_in_the_bucket_and_none_on_local_disk(on_s3):
    home = on_s3.home
    assert not (home / "lake").exists() and not (home / "files").exists()
    lake = on_s3.resources["lake"].lake()
    names = set(lake.table_names())
    assert EXPECTED_TABLES <= names
    assert any(name.startswith("coco_image_embeddings__") for name in names)
    assert {key.split("/")[1] for key in keys_under(on_s3.client, "lake/")} == names
    blobs = keys_under(on_s3.client, "files/blobs/")
    assert len(lake.table(COCO_FILES)) == len(SAMPLE_ANNOTATIONS)
    assert len(blobs) >= len(SAMPLE_ANNOTATIONS)


def test_searches_rank_as_on_the_local_lake(on_s3, capsys):
    assert dlk(["search", "coco", "a cat", "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split()[2] == "900002"
    assert dlk(["search", "memory", "fix authentication bug", "--k", "5", "--mode", "hybrid"]) == 0
    out = capsys.readouterr().out  # the two credential families, by cosine (the query names no identifier)
    assert out.count("rotate_api_key") == 3 and out.count("refresh_session_token") == 2


def test_a_slice_exports_the_files_stored_in_the_bucket(on_s3):
    folder = on_s3.home / "slices" / "coco_cats"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["items"][0]["image_id"] == 900002
    assert manifest["table"].startswith("coco_image_embeddings__")
    assert keys_under(on_s3.client, f"lake/{manifest['table']}/")  # the pinned table lives in the bucket
    store = on_s3.resources["files"].store()
    for item in manifest["items"]:
        data = (folder / item["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] == store.stat(item["file_id"]).sha256
        assert f"files/blobs/{item['sha256']}" in keys_under(on_s3.client, "files/blobs/")


def test_index_checks_pass_on_object_storage(on_s3):
    with dg.DagsterInstance.get() as instance:
        for prefix in ("coco", "video", "memory"):
            for check in ("counts_match", "vectors_valid", "index_used", "cutover_gate"):
                key = dg.AssetCheckKey(dg.AssetKey(f"{prefix}_index"), f"{prefix}_{check}")
                summary = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
                assert summary.status.value == "SUCCEEDED", key.name


def test_doctor_aborts_multipart_uploads_a_killed_write_left(on_s3, capsys):
    client = on_s3.client
    upload = client.create_multipart_upload(Bucket="dlk", Key="files/blobs/" + "ab" * 32)
    client.upload_part(Bucket="dlk", Key="files/blobs/" + "ab" * 32, UploadId=upload["UploadId"], PartNumber=1,
                       Body=b"x" * (5 << 20))
    # moto dates every upload in 2010, so the age cut (younger uploads may be a live run's) is not
    # exercised here; the upload counts as old.
    assert dlk(["doctor"]) == 1
    assert "multipart upload of a killed write" in capsys.readouterr().out
    assert dlk(["doctor", "--repair"]) == 0
    assert "[repaired: aborted]" in capsys.readouterr().out
    assert not client.list_multipart_uploads(Bucket="dlk").get("Uploads")
