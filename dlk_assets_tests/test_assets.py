"""COCO assets invoked directly with `build_asset_context(partition_key=...)` on real resources."""

import dagster as dg
import numpy as np
import pytest

from dlk_assets.defs.coco.assets import coco_files, coco_image_embeddings, coco_images
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES, embeddings_schema
from dlk_assets.resources import CocoSourceResource
from dlk_assets.sources.coco import BadRecordError
from dlk_assets.sources.coco_sample import sample_items, write_coco_parquet


def run(asset, partition_key, **resources):
    return asset(dg.build_asset_context(partition_key=partition_key), **resources)


def ingest(resources, key="shard-00000"):
    files = run(coco_files, key, coco_source=resources["coco_source"], lake=resources["lake"], files=resources["files"])
    images = run(coco_images, key, lake=resources["lake"])
    embeddings = run(coco_image_embeddings, key, lake=resources["lake"], files=resources["files"], image_encoder=resources["image_encoder"])
    return files, images, embeddings


def test_shard_flows_through_files_images_and_embeddings(resources):
    files, images, embeddings = ingest(resources)
    assert files.metadata["files"] == 3 and files.metadata["skipped"] == 0 and images.metadata["rows"] == 3
    lake = resources["lake"].lake()
    rows = lake.table(COCO_IMAGES).read_partition("shard-00000")
    coffee = next(r for r in rows if r["image_id"] == 900003)
    assert coffee["bboxes"][0] == [172.0, 18.0, 246.0, 287.0] and coffee["category_ids"] == [47, 50, 67]
    assert coffee["metadata"]["categories"] == ["cup", "spoon", "dining table"]
    store = resources["files"].store()
    assert store.stat(coffee["file_id"]).sha256 == coffee["sha256"]
    encoder = resources["image_encoder"].encoder()
    vectors = lake.table(embeddings_schema(encoder)).read_partition("shard-00000", ("embedding", "labels", "model"))
    cat = next(v for v in vectors if v["row_key"] == "coco:900002")
    assert cat["embedding"].shape[1] == 384 and np.isfinite(cat["embedding"]).all()
    assert cat["labels"]["labels"][0]["name"] in {"Egyptian cat", "tabby", "tiger cat"} and cat["model"] == encoder.fingerprint
    assert embeddings.metadata["cached"] is False and embeddings.metadata["rows"] == 3


def test_rematerializing_a_shard_gives_the_same_rows_and_caches_embeddings(resources):
    ingest(resources)
    lake = resources["lake"].lake()
    before = {t.name: t for t in (COCO_FILES, COCO_IMAGES)}
    snapshot = {n: [(r["row_key"], r["file_id"]) for r in lake.table(s).read_partition("shard-00000")] for n, s in before.items()}
    _, _, embeddings = ingest(resources)
    assert embeddings.metadata["cached"] is True
    for name, schema in before.items():
        assert [(r["row_key"], r["file_id"]) for r in lake.table(schema).read_partition("shard-00000")] == snapshot[name]
        assert len(lake.table(schema)) == 3


def test_bad_items_are_skipped_counted_and_listed(resources, tmp_path):
    items = sample_items()[:3]
    items[1]["image"] = {"bytes": items[1]["image"]["bytes"][:500], "path": "cut.jpg"}
    source = CocoSourceResource(data_files=[str(write_coco_parquet(items, tmp_path / "s.parquet"))], shard_size=3)
    result = run(coco_files, "shard-00000", coco_source=source, lake=resources["lake"], files=resources["files"])
    assert result.metadata["files"] == 2 and result.metadata["skipped"] == 1
    assert "image_id 900002" in result.metadata["skipped_items"].value


def test_a_failing_shard_leaves_stored_shards_untouched(resources, tmp_path):
    ingest(resources)
    lake = resources["lake"].lake()
    version = lake.table(COCO_FILES).version
    source = CocoSourceResource(shard_size=3, on_bad_record="fail",
                                data_files=[str(write_coco_parquet([{**sample_items()[0], "height": None}], tmp_path / "b.parquet"))])
    with pytest.raises(BadRecordError, match="missing field"):
        run(coco_files, "shard-00000", coco_source=source, lake=resources["lake"], files=resources["files"])
    with pytest.raises(BadRecordError, match="shard-00009 is empty"):
        run(coco_files, "shard-00009", coco_source=resources["coco_source"], lake=resources["lake"], files=resources["files"])
    assert lake.table(COCO_FILES).version == version and lake.table(COCO_FILES).partition_counts() == {"shard-00000": 3}
