"""The SmartSpaces source, sensor and assets, on the generated sample and on deliberately bad videos."""

import shutil

import dagster as dg
import numpy as np
import pytest

from dlk_assets.defs.smartspaces.assets import video_chunks, video_files
from dlk_assets.defs.smartspaces.discovery import (
    cursor_for,
    new_video_ids,
    seen_from_cursor,
)
from dlk_assets.defs.smartspaces.partitions import smartspaces_videos
from dlk_assets.defs.smartspaces.sensors import smartspaces_video_sensor
from dlk_assets.defs.smartspaces.spec import VIDEOS
from dlk_assets.defs.smartspaces.tables import VIDEO_CHUNKS, VIDEO_FILES
from dlk_assets.resources import SmartSpacesSourceResource
from dlk_assets.sources.smartspaces import (
    FolderVideoSource,
    parse_video_id,
    parse_video_path,
)
from dlk_assets.sources.smartspaces_sample import (
    SAMPLE_VIDEOS,
    sample_video_path,
    write_sample_videos,
)

from .conftest import definitions, invoke

GOOD = "scene_001__camera_0001"


def run(asset, partition_key, **resources):
    return asset(dg.build_asset_context(partition_key=partition_key), **resources)


def ingest(resources, key=GOOD, source=None):
    resources = {**resources, "smartspaces_source": source or resources["smartspaces_source"]}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(smartspaces_videos.name, [key])
        embeddings = definitions(resources).get_assets_def(VIDEOS.embeddings_asset)
        return (invoke(video_files, key, resources, instance), invoke(video_chunks, key, resources, instance),
                invoke(embeddings, key, resources, instance))


@pytest.fixture
def mirror(tmp_path):
    """A folder source holding two good sample videos and room for bad ones."""
    root = tmp_path / "mirror"
    write_sample_videos(root)
    return root


def folder_source(root, **settings):
    return SmartSpacesSourceResource(dataset="folder", folder=str(root), **settings)


def test_repository_paths_become_scene_camera_partition_keys():
    ref = parse_video_path("MTMC_Tracking_2024/train/scene_042/camera_0007/video.mp4")
    assert (ref.scene_name, ref.camera_id, ref.video_id) == ("scene_042", "camera_0007", "scene_042__camera_0007")
    assert parse_video_id(ref.video_id) == ("scene_042", "camera_0007")
    for other in ("MTMC_Tracking_2024/train/scene_042/camera_0007/calibration.json",
                  "MTMC_Tracking_2024/val/scene_042/camera_0007/video.mp4",
                  "MTMC_Tracking_2024/train/scene_042/video.mp4",
                  "MTMC_Tracking_2024/train/scene__x/camera_0001/video.mp4",
                  "MTMC_Tracking_2024/train/map/camera_0001/video.mp4"):
        assert parse_video_path(other) is None, other
    with pytest.raises(ValueError, match="not '<scene_"):
        parse_video_id("camera_0001")


def test_folder_source_lists_finds_and_fetches(mirror):
    source = FolderVideoSource(mirror)
    assert [v.video_id for v in source.list_videos()] == sorted(f"{s}__{c}" for s, c in SAMPLE_VIDEOS)
    assert source.fetch(source.find(GOOD)).read_bytes()[4:8] == b"ftyp"
    with pytest.raises(KeyError, match="no video 'scene_009__camera_0001'"):
        source.find("scene_009__camera_0001")


def test_generated_sample_is_the_same_every_time(tmp_path):
    first, second = write_sample_videos(tmp_path / "a"), write_sample_videos(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_discovery_skips_registered_and_previously_seen_videos():
    listed = ["scene_001__camera_0001", "scene_001__camera_0002", "scene_002__camera_0001"]
    assert new_video_ids(listed, set(), set(), 2) == listed[:2]
    assert new_video_ids(listed, {listed[0]}, {listed[1]}, 5) == [listed[2]]
    assert seen_from_cursor(cursor_for({"a"}, {"b"}, ["c"])) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="not a JSON list"):
        seen_from_cursor('{"a": 1}')


def test_sensor_registers_a_capped_number_of_videos_per_tick(mirror):
    instance = dg.DagsterInstance.ephemeral()
    resources = {"smartspaces_source": folder_source(mirror, max_new_videos_per_tick=2)}
    first = smartspaces_video_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert [r.partition_key for r in first.run_requests] == ["scene_001__camera_0001", "scene_001__camera_0002"]
    assert [r.run_key for r in first.run_requests] == ["scene_001__camera_0001", "scene_001__camera_0002"]
    instance.add_dynamic_partitions(smartspaces_videos.name, list(first.dynamic_partitions_requests[0].partition_keys))
    second = smartspaces_video_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources))
    assert [r.partition_key for r in second.run_requests] == ["scene_002__camera_0001"]
    instance.add_dynamic_partitions(smartspaces_videos.name, ["scene_002__camera_0001"])
    # A partition deleted in the UI is not registered again; a newly listed video is.
    instance.delete_dynamic_partition(smartspaces_videos.name, "scene_001__camera_0002")
    new_camera = sample_video_path(mirror, "scene_003", "camera_0001")
    new_camera.parent.mkdir(parents=True)
    shutil.copy(sample_video_path(mirror, "scene_001", "camera_0002"), new_camera)
    third = smartspaces_video_sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor, resources=resources))
    assert [r.partition_key for r in third.run_requests] == ["scene_003__camera_0001"]
    instance.add_dynamic_partitions(smartspaces_videos.name, ["scene_003__camera_0001"])
    fourth = smartspaces_video_sensor(dg.build_sensor_context(instance=instance, cursor=third.cursor, resources=resources))
    assert not fourth.run_requests and "no new videos" in fourth.skip_reason.skip_message


def test_a_video_flows_through_files_chunks_and_embeddings(resources):
    files, chunks, embeddings = ingest(resources)
    assert files.metadata["duration_s"] == 12.0 and files.metadata["codec"] == "h264"
    assert chunks.metadata["chunks"] == 3 and chunks.metadata["total_seconds"] == 12.0
    assert chunks.metadata["contact_sheet"].value.startswith("![chunks](data:image/jpeg;base64,")
    lake = resources["lake"].lake()
    video = lake.table(VIDEO_FILES).read_partition(GOOD)[0]
    assert (video["width"], video["height"], video["fps"], video["scene_name"], video["camera_id"]) == (320, 240, 10.0, "scene_001", "camera_0001")
    rows = lake.table(VIDEO_CHUNKS).read_partition(GOOD)
    store = resources["files"].store()
    assert all(store.stat(r["file_id"]).sha256 == r["sha256"] and store.stat(r["file_id"]).content_type == "video/mp4" for r in rows)
    assert [r["row_key"] for r in rows] == [f"video:{GOOD}:{i:05d}" for i in range(3)]
    encoder = resources["models"].registry().target(VIDEOS)
    vectors = lake.table(VIDEOS.embeddings_schema(encoder)).read_partition(GOOD, ("embedding", "frames", "start_s", "embedding_settings"))
    cat = vectors[0]
    assert cat["embedding"].shape[1] == encoder.dim and np.isfinite(cat["embedding"]).all()
    assert [f["time_s"] for f in cat["frames"]["frames"]] == [0.6, 2.0, 3.3] and cat["embedding_settings"] == {"frames_per_chunk": 3}
    assert {"Egyptian cat", "tabby", "tiger cat"} & {label["name"] for f in cat["frames"]["frames"] for label in f["labels"]}
    assert embeddings.metadata["cached"] is False and embeddings.metadata["items_embedded"] == 3
    assert "Egyptian cat" in embeddings.metadata["preview"].value


def test_rematerializing_replaces_chunks_exactly_and_caches_embeddings(resources):
    ingest(resources)
    lake = resources["lake"].lake()
    before = [(r["row_key"], r["file_id"], r["start_s"], r["end_s"]) for r in lake.table(VIDEO_CHUNKS).read_partition(GOOD)]
    _, _, embeddings = ingest(resources)
    assert embeddings.metadata["cached"] is True
    assert [(r["row_key"], r["file_id"], r["start_s"], r["end_s"]) for r in lake.table(VIDEO_CHUNKS).read_partition(GOOD)] == before
    assert len(lake.table(VIDEO_CHUNKS)) == 3
    # A new chunk length replaces the video's chunks, no leftovers from the old cut.
    ingest(resources, source=SmartSpacesSourceResource(chunk_duration_s=0))
    whole = lake.table(VIDEO_CHUNKS).read_partition(GOOD)
    assert [(r["chunk_index"], r["start_s"], r["end_s"]) for r in whole] == [(0, 0.0, 12.0)]
    encoder = resources["models"].registry().target(VIDEOS)
    assert lake.table(VIDEOS.embeddings_schema(encoder)).partition_counts() == {GOOD: 1}
    # Sampling more frames per chunk changes the vectors, so the chunk is embedded again.
    _, _, more = ingest(resources, source=SmartSpacesSourceResource(chunk_duration_s=0, frames_per_chunk=4))
    assert more.metadata["cached"] is False


@pytest.mark.parametrize("damage, message", [
    (lambda data: b"", "empty"),
    (lambda data: data[: len(data) // 3], "not a readable video"),
    (lambda data: b"<html>rate limited</html>" * 40, "not a readable video"),
])
def test_a_bad_video_fails_its_partition_and_leaves_others_untouched(resources, mirror, damage, message):
    source = folder_source(mirror)
    ingest(resources, GOOD, source)
    bad_id = "scene_001__camera_0002"
    path = sample_video_path(mirror, "scene_001", "camera_0002")
    path.write_bytes(damage(path.read_bytes()))
    lake = resources["lake"].lake()
    before = lake.table(VIDEO_CHUNKS).read_partition(GOOD)
    with pytest.raises(dg.Failure, match=f"{bad_id}: probe failed: .*{message}"):
        run(video_files, bad_id, lake=resources["lake"], files=resources["files"], smartspaces_source=source)
    assert lake.table(VIDEO_FILES).partition_counts() == {GOOD: 1}
    assert lake.table(VIDEO_CHUNKS).read_partition(GOOD) == before


def test_chunking_before_the_file_exists_says_what_to_do(resources):
    with pytest.raises(dg.Failure, match="materialize video_files first"):
        run(video_chunks, GOOD, lake=resources["lake"], files=resources["files"], smartspaces_source=resources["smartspaces_source"])


def test_a_video_missing_from_the_source_fails_with_the_reason(resources, mirror):
    with pytest.raises(dg.Failure, match="download failed: .*no video 'scene_009__camera_0001'"):
        run(video_files, "scene_009__camera_0001", lake=resources["lake"], files=resources["files"],
            smartspaces_source=folder_source(mirror))
