"""The whole sample graph materialized into a temporary DAGSTER_HOME, searched, sliced and re-run.

Materializing everything takes a while, so one instance is built per module and the tests read it.
"""

import hashlib
import json
from types import SimpleNamespace

import dagster as dg
import pytest

from dlk_assets.cli import main as dlk
from dlk_assets.defs.coco.spec import COCO
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.defs.pipeline.serving import embeddings_table, search_table
from dlk_assets.defs.slices.export import select_hits
from dlk_assets.defs.slices.specs import SliceSpec
from dlk_assets.defs.smartspaces.spec import VIDEOS
from dlk_assets.defs.smartspaces.tables import VIDEO_CHUNKS, VIDEO_FILES
from dlk_assets.defs.sources import SOURCES
from dlk_assets.defs.swe_traces.tables import SWE_MEMORY, SWE_TRACES
from dlk_assets.media.ffmpeg import probe_video
from dlk_assets.operations import Operator, materialize_sources
from dlk_assets.sources.coco_sample import SAMPLE_ANNOTATIONS
from dlk_assets.sources.smartspaces_sample import SAMPLE_VIDEOS, segment_at
from dlk_assets.sources.swe_sample import sample_rows

from .conftest import definitions, make_home, sample_resources

IMAGE_IDS = sorted(image_id for _, image_id, _ in SAMPLE_ANNOTATIONS)
VIDEO_IDS = sorted(f"{scene}__{camera}" for scene, camera in SAMPLE_VIDEOS)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("e2e") / "dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        for name in ("DLK_MODELS_FILE", "DLK_IMAGE_ENCODER", "DLK_TEXT_ENCODER"):
            patch.delenv(name, raising=False)
        resources = sample_resources()
        with dg.DagsterInstance.get() as instance:
            operator = Operator(instance, definitions(resources), resources, log=lambda _: None)
            materialize_sources(operator, list(SOURCES.values()))
            yield SimpleNamespace(home=home, resources=resources, instance=instance, operator=operator)


def served(e2e, spec):
    lake = e2e.resources["lake"].lake()
    encoder = e2e.resources["models"].registry().active(spec, lake)
    return embeddings_table(spec, lake, encoder), encoder


def search(e2e, spec, query, k=10, where=None):
    table, encoder = served(e2e, spec)
    return search_table(spec, table, encoder, query, None, k, where)


def table_snapshot(e2e):
    resources = e2e.resources
    lake = resources["lake"].lake()
    tables = [lake.table(COCO_FILES), lake.table(COCO_IMAGES), served(e2e, COCO)[0],
              lake.table(VIDEO_FILES), lake.table(VIDEO_CHUNKS), served(e2e, VIDEOS)[0]]
    snapshot = {t.schema.name: sorted((r["row_key"], r["partition"], r["file_id"], r["sha256"])
                                      for p in t.partition_counts() for r in t.read_partition(p, ("partition", "file_id", "sha256")))
                for t in tables}
    for table in (lake.table(SWE_TRACES), lake.table(SWE_MEMORY)):
        snapshot[table.schema.name] = sorted((r["row_key"], r["partition"], r["task"]) for r in table.read_where(None, ("partition", "task")))
    return snapshot


def test_sample_graph_materializes_and_search_finds_the_right_photos(e2e):
    assert sorted(e2e.instance.get_dynamic_partitions("coco_shards")) == ["shard-00000", "shard-00001", "shard-00002"]
    snapshot = table_snapshot(e2e)
    for name in ("coco_files", "coco_images"):
        assert sorted(int(key.split(":")[1]) for key, *_ in snapshot[name]) == IMAGE_IDS
    assert search(e2e, COCO, "a cat", k=3)[0].values["image_id"] == 900002
    assert search(e2e, COCO, "a cup of coffee", k=3)[0].values["image_id"] == 900003
    wide = search(e2e, COCO, "a cat", k=10, where="width >= 500")
    assert wide and all(hit.values["width"] >= 500 for hit in wide) and 900002 not in [h.values["image_id"] for h in wide]


def test_every_video_is_chunked_on_keyframes_and_embedded(e2e):
    assert sorted(e2e.instance.get_dynamic_partitions("smartspaces_videos")) == VIDEO_IDS
    lake = e2e.resources["lake"].lake()
    chunks = lake.table(VIDEO_CHUNKS)
    for (scene, camera), segments in SAMPLE_VIDEOS.items():
        rows = chunks.read_partition(f"{scene}__{camera}")
        # 4 s chunks over 4 s segments with a keyframe every 2 s: one chunk per segment.
        assert [(r["chunk_index"], r["start_s"], r["end_s"]) for r in rows] == [(i, 4.0 * i, 4.0 * (i + 1)) for i in range(len(segments))]
    assert served(e2e, VIDEOS)[0].partition_counts() == chunks.partition_counts()


def test_a_query_naming_a_segment_ranks_that_segments_chunk_first(e2e):
    recognised = [(scene, camera, s) for (scene, camera), segments in SAMPLE_VIDEOS.items() for s in segments if s.recognised]
    assert len(recognised) >= 5
    for scene, camera, segment in recognised:
        top = search(e2e, VIDEOS, segment.subject, k=3)[0].values
        assert (top["video_id"], segment_at(scene, camera, (top["start_s"] + top["end_s"]) / 2)) == (f"{scene}__{camera}", segment), segment.subject
    filtered = search(e2e, VIDEOS, "a cat", k=10, where="scene_name = 'scene_002'")
    assert filtered and {h.values["scene_name"] for h in filtered} == {"scene_002"}


def test_index_checks_pass_and_are_recorded(e2e):
    for prefix, embeddings in (("coco", "coco_image_embeddings"), ("video", "video_chunk_embeddings"), ("memory", "swe_memory_embeddings")):
        keys = [dg.AssetCheckKey(dg.AssetKey(f"{prefix}_index"), f"{prefix}_{c}")
                for c in ("counts_match", "vectors_valid", "index_used", "cutover_gate")]
        keys.append(dg.AssetCheckKey(dg.AssetKey(embeddings), f"{prefix}_embedded_by_target"))
        for key in keys:
            summary = e2e.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            assert summary.status.value == "SUCCEEDED", key.name


def test_slices_export_files_that_match_the_store_and_the_pinned_version(e2e):
    resources, home = e2e.resources, e2e.home
    manifest = json.loads((home / "slices" / "coco_cats" / "manifest.json").read_text())
    assert manifest["slice"]["query"] == "a cat" and manifest["slice"]["where"] == "width >= 300"
    table, encoder = served(e2e, COCO)
    assert manifest["encoder_fingerprint"] == encoder.fingerprint and manifest["encoder"] == "efficientnet-lite0"
    # Every item is the cat: the sample's only image annotated with COCO's "cat" (chelsea, 900002). The
    # horse silhouette that used to fill k=2 falls under min_relative_score and is listed as cut.
    cats = {image_id for _, image_id, objects in SAMPLE_ANNOTATIONS if "cat" in {name for name, _ in objects}}
    assert cats == {900002} and [item["image_id"] for item in manifest["items"]] == [900002]
    assert manifest["items"][0]["row_key"] == "coco:900002" and manifest["items"][0]["partition"] == "shard-00000"
    assert manifest["items"][0]["why"]["relative_to_top"] == 1.0 and "min_relative_score 0.75" in manifest["items"][0]["why"]["reason"]
    assert [(c["image_id"], c["reason"]) for c in manifest["cut"]] == [(900006, "below_relative_cutoff")]
    assert manifest["cut"][0]["relative_to_top"] < 0.75 and manifest["cut"][0]["score"] < 0.75 * manifest["top_score"]
    store = resources["files"].store()
    for item in manifest["items"]:
        data = (home / "slices" / "coco_cats" / item["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] == store.stat(item["file_id"]).sha256
    assert table.open_tag(manifest["table_tag"]).version == manifest["table_version"]
    # The UI shows the manifest relative to $DAGSTER_HOME, and the slice's items with their source ids.
    materialization = e2e.instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("coco_slices"), asset_partitions=["coco_cats"]), 1).records[0].asset_materialization
    assert materialization.metadata["manifest"].value == "slices/coco_cats/manifest.json"
    assert "| 1 | " in materialization.metadata["items"].value and "shard-00000" in materialization.metadata["items"].value
    assert (materialization.metadata["kept"].value, materialization.metadata["cut"].value) == (1, 1)
    assert "| 2 | " in materialization.metadata["cut_items"].value and "below_relative_cutoff" in materialization.metadata["cut_items"].value
    coffee = json.loads((home / "slices" / "coco_coffee" / "manifest.json").read_text())
    assert coffee["items"][0]["image_id"] == 900003


def test_video_slices_export_playable_clips_that_match_the_store(e2e):
    store = e2e.resources["files"].store()
    video_slices = sorted(p for p in (e2e.home / "slices").iterdir() if p.name.startswith("videos_"))
    assert len(video_slices) == 5
    for folder in video_slices:
        manifest = json.loads((folder / "manifest.json").read_text())
        # The sample has no duplicate chunks, so kept and cut together are the top k (all kept without rules).
        assert manifest["slice"]["source"] == "videos" and len(manifest["items"]) + len(manifest["cut"]) == manifest["slice"]["k"]
        for item in manifest["items"]:
            clip = folder / item["file"]
            assert hashlib.sha256(clip.read_bytes()).hexdigest() == item["sha256"] == store.stat(item["file_id"]).sha256
            probe = probe_video(clip)  # demuxes every packet: the clip is a complete H.264 MP4
            assert probe.codec == "h264" and probe.duration_s == pytest.approx(item["end_s"] - item["start_s"], abs=0.01)
    espresso = json.loads((e2e.home / "slices" / "videos_espresso" / "manifest.json").read_text())["items"][0]
    assert (espresso["video_id"], espresso["chunk_index"]) == ("scene_001__camera_0001", 1)
    helmets = json.loads((e2e.home / "slices" / "videos_person_in_helmet" / "manifest.json").read_text())["items"]
    assert {i["scene_name"] for i in helmets} == {"scene_002"}
    # The cat slice holds the cat chunk and no star field (the Hubble deep field used to fill k=2).
    cats = json.loads((e2e.home / "slices" / "videos_cat_indoors" / "manifest.json").read_text())

    def photo(item):
        return segment_at(item["scene_name"], item["camera_id"], (item["start_s"] + item["end_s"]) / 2).photo

    assert [photo(i) for i in cats["items"]] == ["chelsea"]
    assert [(photo(c), c["reason"]) for c in cats["cut"]] == [("hubble_deep_field", "below_relative_cutoff")]


def test_slice_dedupe_widens_the_search_and_cuts_near_duplicates_on_image_features(e2e):
    table, encoder = served(e2e, COCO)
    # The sample's distinct photos have image-feature cosines from 0.10 to 0.29 (the cat's with the
    # rest: 0.10 to 0.17). At 0.05 every other photo counts as a near copy of the cat, so the search
    # keeps doubling k (3, 6, 12) until the table runs out, and all seven are cut as duplicates of rank 1.
    spec = SliceSpec("cat_near_copies", "coco", "a cat", k=3, dedupe=True, dedupe_similarity=0.05)
    hits, selection = select_hits(spec, COCO, table, encoder)
    assert len(hits) == len(IMAGE_IDS) and [d.candidate.row_key for d in selection.kept] == ["coco:900002"]
    assert len(selection.cut) == 7 and {(d.why["reason"], d.why["match"], d.why["duplicate_of_rank"]) for d in selection.cut} == {
        ("duplicate", "similarity", 1)}
    assert all(0.05 <= d.why["similarity"] < 0.3 for d in selection.cut)
    # Above every distinct pair nothing is a duplicate, and one search of k fills the slice.
    spec = SliceSpec("cat_distinct", "coco", "a cat", k=3, dedupe=True, dedupe_similarity=0.5)
    hits, selection = select_hits(spec, COCO, table, encoder)
    assert len(hits) == 3 and len(selection.kept) == 3 and selection.cut == []


def data_versions(instance, asset):
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    latest = {}
    for record in reversed(records):  # oldest first, so the newest per partition wins
        latest[record.asset_materialization.partition] = record.asset_materialization.tags["dagster/data_version"]
    return latest


def test_running_everything_again_gives_the_same_tables_and_data_versions(e2e):
    before = table_snapshot(e2e)
    assert len(before["swe_traces"]) == 288 == len(before["swe_memory"])
    watched = ("coco_files", "coco_images", "coco_image_embeddings", "video_chunks", "swe_traces", "swe_memory_embeddings")
    versions = {asset: data_versions(e2e.instance, asset) for asset in watched}
    materialize_sources(e2e.operator, list(SOURCES.values()))
    assert table_snapshot(e2e) == before
    assert {asset: data_versions(e2e.instance, asset) for asset in watched} == versions  # same bytes: nothing stale


def test_table_assets_carry_dagsters_standard_table_metadata(e2e):
    for asset in ("coco_files", "coco_images", "video_chunks", "swe_memory", "coco_image_embeddings", "coco_index"):
        metadata = e2e.instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata
        assert {"dagster/row_count", "dagster/column_schema", "dagster/table_name", "dagster/uri"} <= set(metadata), asset
        assert metadata["dagster/uri"].value.startswith("file://")


def test_lineage_follows_an_image_a_chunk_and_a_trace(e2e, capsys):
    assert dlk(["lineage", "coco", "900002"]) == 0
    image = capsys.readouterr().out
    assert "coco coco:900002  (partition shard-00000)" in image and "stream_position 1" in image
    file_id = next(line.split()[2] for line in image.splitlines() if line.strip().startswith("file "))
    assert e2e.resources["files"].store().stat(file_id).sha256 in image
    assert "[active+target]" in image and "coco_cats  rank 1" in image and "(slices/coco_cats/manifest.json)" in image
    assert dlk(["lineage", "videos", "scene_001__camera_0001:1"]) == 0
    chunk = capsys.readouterr().out
    assert "video:scene_001__camera_0001:00001" in chunk and "MTMC_Tracking_2024/train/scene_001/camera_0001/video.mp4" in chunk
    assert "smartspaces_video_files  video:scene_001__camera_0001" in chunk and "videos_espresso  rank 1" in chunk
    run_id = sample_rows()[7]["run_id"]
    assert dlk(["lineage", "memory", run_id]) == 0
    trace = capsys.readouterr().out
    assert "swe_traces  swe:" in trace and "stream_position 7" in trace and "file         none (stored as rows)" in trace
    assert dlk(["lineage", "coco", "123"]) == 1 and "no coco item '123'" in capsys.readouterr().err
    assert dlk(["lineage", "videos", "cat"]) == 1 and capsys.readouterr().err.startswith("dlk: video id 'cat'")


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
