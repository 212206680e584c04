"""The COCO reader on its parquet row groups: the sample, streaming's positions, and bad shards."""

import pytest

from dlk_assets.sources.coco import BadRecordError, CocoStream
from dlk_assets.sources.coco_sample import (
    SAMPLE_ANNOTATIONS,
    sample_items,
    write_coco_parquet,
)


def test_bundled_sample_streams_in_shards_with_coco_ids():
    stream = CocoStream()
    shard = stream.read_shard(0, 3)
    assert [r.image_id for r in shard.records] == [900001, 900002, 900003] and not shard.skipped
    coffee = shard.records[2]
    assert coffee.category_ids == [47, 50, 67] and coffee.bboxes_xyxy[0] == [172.0, 18.0, 418.0, 305.0]
    assert (coffee.width, coffee.height) == (600, 400) and coffee.image_bytes[:2] == b"\xff\xd8"
    assert len(stream.read_shard(2, 3).records) == len(SAMPLE_ANNOTATIONS) - 6
    assert stream.has_shard(2, 3) and not stream.has_shard(3, 3)


def test_raw_items_and_positions_are_what_streaming_yields():
    from datasets import Image, load_dataset

    from dlk_assets.sources.coco import bundled_sample_path

    streamed = load_dataset("parquet", data_files={"train": [bundled_sample_path()]}, split="train", streaming=True)
    streamed = list(streamed.cast_column("image", Image(decode=False)))
    assert list(CocoStream().iter_raw(0, 100)) == list(enumerate(streamed))


def test_empty_shard_is_a_clear_error():
    with pytest.raises(BadRecordError, match=r"shard-00005 is empty.*positions 15\.\.17 \(shard size 3\)"):
        CocoStream().read_shard(5, 3)


@pytest.fixture
def bad_items():
    items = sample_items()[:5]
    items[0]["image"] = {"bytes": items[0]["image"]["bytes"][:2000], "path": "truncated.jpg"}  # truncated JPEG
    items[1]["image"] = {"bytes": b"this is not an image", "path": "garbage.jpg"}
    items[2]["width"] = None  # missing field
    items[3]["objects"].update(bbox=[[50, 50, 10, 10]], category=[0], bbox_id=[1], area=[0])  # xmax < xmin
    return items


def test_bad_records_are_skipped_and_named(tmp_path, bad_items):
    path = write_coco_parquet(bad_items, tmp_path / "bad.parquet")
    shard = CocoStream(data_files=(str(path),)).read_shard(0, 5)
    assert [r.image_id for r in shard.records] == [bad_items[4]["image_id"]]
    reasons = {s.position: s.reason for s in shard.skipped}
    assert "image_id 900001" in reasons[0] and "field 'image'" in reasons[0] and "do not decode" in reasons[0]
    assert "field 'image'" in reasons[1]
    assert "missing field(s) width" in reasons[2]
    assert "xmax < xmin" in reasons[3]


def test_fail_policy_stops_at_the_first_bad_record(tmp_path, bad_items):
    path = write_coco_parquet(bad_items, tmp_path / "bad.parquet")
    with pytest.raises(BadRecordError, match="stream position 0 \\(image_id 900001\\)"):
        CocoStream(data_files=(str(path),)).read_shard(0, 5, on_bad_record="fail")


def test_declared_size_must_match_the_pixels(tmp_path):
    items = sample_items()[:1]
    items[0]["width"] = 999
    path = write_coco_parquet(items, tmp_path / "size.parquet")
    shard = CocoStream(data_files=(str(path),)).read_shard(0, 1)
    assert not shard.records and "is 512x512 but width/height say 999x512" in shard.skipped[0].reason
