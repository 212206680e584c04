"""The whole sample graph materialized into a temporary DAGSTER_HOME, searched, sliced and re-run.

Materializing everything takes a while, so one instance is built per module and the tests read it.
"""

import hashlib
import json
import shutil
from types import SimpleNamespace

import dagster as dg
import pytest

from dlk_assets.cli import main as dlk
from dlk_assets.defs.coco.search import coco_embeddings_table, coco_text_search
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.defs.smartspaces.search import chunk_embeddings_table, video_text_search
from dlk_assets.defs.smartspaces.tables import VIDEO_CHUNKS, VIDEO_FILES
from dlk_assets.defs.swe_traces.tables import SWE_MEMORY, SWE_TRACES
from dlk_assets.demo import materialize_everything
from dlk_assets.media.ffmpeg import probe_video
from dlk_assets.sources.coco_sample import SAMPLE_ANNOTATIONS
from dlk_assets.sources.smartspaces_sample import SAMPLE_VIDEOS, segment_at

from .conftest import REPO, sample_resources

IMAGE_IDS = sorted(image_id for _, image_id, _ in SAMPLE_ANNOTATIONS)
VIDEO_IDS = sorted(f"{scene}__{camera}" for scene, camera in SAMPLE_VIDEOS)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e") / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        resources = sample_resources()
        with dg.DagsterInstance.get() as instance:
            materialize_everything(instance, resources, log=lambda _: None)
            yield SimpleNamespace(home=home, resources=resources, instance=instance)


def table_snapshot(resources):
    lake = resources["lake"].lake()
    encoder = resources["image_encoder"].encoder()
    tables = [lake.table(COCO_FILES), lake.table(COCO_IMAGES), coco_embeddings_table(lake, encoder),
              lake.table(VIDEO_FILES), lake.table(VIDEO_CHUNKS), chunk_embeddings_table(lake, encoder)]
    snapshot = {t.schema.name: sorted((r["row_key"], r["partition"], r["file_id"], r["sha256"])
                                      for p in t.partition_counts() for r in t.read_partition(p, ("partition", "file_id", "sha256")))
                for t in tables}
    for table in (lake.table(SWE_TRACES), lake.table(SWE_MEMORY)):
        snapshot[table.schema.name] = sorted((r["row_key"], r["partition"], r["task"]) for r in table.read_where(None, ("partition", "task")))
    return snapshot


def test_sample_graph_materializes_and_search_finds_the_right_photos(e2e):
    assert sorted(e2e.instance.get_dynamic_partitions("coco_shards")) == ["shard-00000", "shard-00001", "shard-00002"]
    snapshot = table_snapshot(e2e.resources)
    for name in ("coco_files", "coco_images"):
        assert sorted(int(key.split(":")[1]) for key, *_ in snapshot[name]) == IMAGE_IDS
    encoder = e2e.resources["image_encoder"].encoder()
    table = coco_embeddings_table(e2e.resources["lake"].lake(), encoder)
    assert coco_text_search(table, encoder, "a cat", k=3)[0].values["image_id"] == 900002
    assert coco_text_search(table, encoder, "a cup of coffee", k=3)[0].values["image_id"] == 900003
    wide = coco_text_search(table, encoder, "a cat", k=10, where="width >= 500")
    assert wide and all(hit.values["width"] >= 500 for hit in wide) and 900002 not in [h.values["image_id"] for h in wide]


def test_every_video_is_chunked_on_keyframes_and_embedded(e2e):
    assert sorted(e2e.instance.get_dynamic_partitions("smartspaces_videos")) == VIDEO_IDS
    lake = e2e.resources["lake"].lake()
    chunks = lake.table(VIDEO_CHUNKS)
    for (scene, camera), segments in SAMPLE_VIDEOS.items():
        rows = chunks.read_partition(f"{scene}__{camera}")
        # 4 s chunks over 4 s segments with a keyframe every 2 s: one chunk per segment.
        assert [(r["chunk_index"], r["start_s"], r["end_s"]) for r in rows] == [(i, 4.0 * i, 4.0 * (i + 1)) for i in range(len(segments))]
    encoder = e2e.resources["image_encoder"].encoder()
    assert chunk_embeddings_table(lake, encoder).partition_counts() == chunks.partition_counts()


def test_a_query_naming_a_segment_ranks_that_segments_chunk_first(e2e):
    encoder = e2e.resources["image_encoder"].encoder()
    table = chunk_embeddings_table(e2e.resources["lake"].lake(), encoder)
    recognised = [(scene, camera, s) for (scene, camera), segments in SAMPLE_VIDEOS.items() for s in segments if s.recognised]
    assert len(recognised) >= 5
    for scene, camera, segment in recognised:
        top = video_text_search(table, encoder, segment.subject, k=3)[0].values
        assert (top["video_id"], segment_at(scene, camera, (top["start_s"] + top["end_s"]) / 2)) == (f"{scene}__{camera}", segment), segment.subject
    filtered = video_text_search(table, encoder, "a cat", k=10, where="scene_name = 'scene_002'")
    assert filtered and {h.values["scene_name"] for h in filtered} == {"scene_002"}


def test_index_checks_pass_and_are_recorded(e2e):
    checks = {"coco_index": ("coco_counts_match", "coco_vectors_valid", "coco_index_exists"),
              "video_index": ("video_counts_match", "video_vectors_valid", "video_indexes_exist"),
              "memory_index": ("memory_counts_match", "memory_vectors_valid", "memory_indexes_exist")}
    for asset, names in checks.items():
        for check in names:
            key = dg.AssetCheckKey(dg.AssetKey(asset), check)
            summary = e2e.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            assert summary.status.value == "SUCCEEDED", check


def test_slices_export_files_that_match_the_store_and_the_pinned_version(e2e):
    resources, home = e2e.resources, e2e.home
    manifest = json.loads((home / "slices" / "coco_cats" / "manifest.json").read_text())
    assert manifest["slice"]["query"] == "a cat" and manifest["slice"]["where"] == "width >= 300"
    assert manifest["model_fingerprint"] == resources["image_encoder"].encoder().fingerprint
    assert manifest["items"][0]["image_id"] == 900002 and len(manifest["items"]) == 2
    store = resources["files"].store()
    for item in manifest["items"]:
        data = (home / "slices" / "coco_cats" / item["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] == store.stat(item["file_id"]).sha256
    table = coco_embeddings_table(resources["lake"].lake(), resources["image_encoder"].encoder())
    assert table.open_tag(manifest["table_tag"]).version == manifest["table_version"]
    coffee = json.loads((home / "slices" / "coco_coffee" / "manifest.json").read_text())
    assert coffee["items"][0]["image_id"] == 900003


def test_video_slices_export_playable_clips_that_match_the_store(e2e):
    store = e2e.resources["files"].store()
    video_slices = sorted(p for p in (e2e.home / "slices").iterdir() if p.name.startswith("videos_"))
    assert len(video_slices) == 5
    for folder in video_slices:
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["slice"]["source"] == "videos" and len(manifest["items"]) == manifest["slice"]["k"]
        for item in manifest["items"]:
            clip = folder / item["file"]
            assert hashlib.sha256(clip.read_bytes()).hexdigest() == item["sha256"] == store.stat(item["file_id"]).sha256
            probe = probe_video(clip)  # demuxes every packet: the clip is a complete H.264 MP4
            assert probe.codec == "h264" and probe.duration_s == pytest.approx(item["end_s"] - item["start_s"], abs=0.01)
    espresso = json.loads((e2e.home / "slices" / "videos_espresso" / "manifest.json").read_text())["items"][0]
    assert (espresso["video_id"], espresso["chunk_index"]) == ("scene_001__camera_0001", 1)
    helmets = json.loads((e2e.home / "slices" / "videos_person_in_helmet" / "manifest.json").read_text())["items"]
    assert {i["scene_name"] for i in helmets} == {"scene_002"}


def test_running_everything_again_gives_the_same_tables(e2e):
    before = table_snapshot(e2e.resources)
    assert len(before["swe_traces"]) == 288 == len(before["swe_memory"])
    materialize_everything(e2e.instance, e2e.resources, log=lambda _: None)
    assert table_snapshot(e2e.resources) == before


def test_demo_command_prints_image_clip_and_memory_searches(e2e, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(e2e.home))
    assert dlk(["demo", "--k", "3"]) == 0
    out = capsys.readouterr().out
    for heading in ('search coco "a cat"', 'search videos "a cat"', "--mode bm25", "--mode vector", "--mode hybrid"):
        assert heading in out, heading
    assert "scene_001__camera_0001" in out and "refresh_session_token" in out


def test_cli_search_prints_a_ranked_table(e2e, capsys):
    assert dlk(["search", "coco", "a cat", "--k", "5", "--where", "width >= 300"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["rank", "score", "image_id", "file_id"]
    assert lines[1].split()[0] == "1" and lines[1].split()[2] == "900002" and len(lines) == 6
    assert dlk(["search", "coco", "a cat", "--where", "width >= 'x'"]) == 1
    assert "numeric" in capsys.readouterr().err


def test_cli_video_search_prints_chunks_with_seconds(e2e, capsys):
    assert dlk(["search", "videos", "a cat", "--k", "3", "--where", "scene_name = 'scene_001'"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:6] == ["rank", "score", "video_id", "chunk", "start_s", "end_s"]
    first = lines[1].split()
    assert first[2] == "scene_001__camera_0001" and (first[3], first[4], first[5]) == ("0", "0.00", "4.00")
    assert all(line.split()[2].startswith("scene_001__") for line in lines[1:])
    assert dlk(["search", "pictures", "a cat"]) == 2
