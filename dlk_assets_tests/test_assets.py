"""COCO assets invoked directly with `build_asset_context(partition_key=...)` on real resources."""

import io

import dagster as dg
import numpy as np
import pytest
from PIL import Image

from dlk_assets.defs.coco.assets import coco_files, coco_images
from dlk_assets.defs.coco.spec import COCO
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.resources import CocoSourceResource
from dlk_assets.sources.coco import BadRecordError
from dlk_assets.sources.coco_sample import jpeg_bytes, sample_items, write_coco_parquet

from .conftest import definitions, invoke

SHARD = "shard-00000"


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("coco_shards", [SHARD, "shard-00009"])
        yield instance


def ingest(resources, instance, key=SHARD):
    embeddings = definitions(resources).get_assets_def(COCO.embeddings_asset)
    return (invoke(coco_files, key, resources, instance), invoke(coco_images, key, resources, instance),
            invoke(embeddings, key, resources, instance))


def test_shard_flows_through_files_images_and_embeddings(resources, instance):
    files, images, embeddings = ingest(resources, instance)
    assert files.metadata["files"] == 3 and files.metadata["skipped"] == 0 and images.metadata["rows"] == 3
    assert images.metadata["dagster/partition_row_count"] == 3 and images.metadata["dagster/table_name"] == "coco_images"
    assert images.metadata["dagster/uri"].startswith("file://")
    lake = resources["lake"].lake()
    rows = lake.table(COCO_IMAGES).read_partition(SHARD)
    coffee = next(r for r in rows if r["image_id"] == 900003)
    assert coffee["bboxes"][0] == [172.0, 18.0, 246.0, 287.0] and coffee["category_ids"] == [47, 50, 67]
    assert coffee["metadata"]["categories"] == ["cup", "spoon", "dining table"]
    assert coffee["dagster_run_id"] == "direct-invocation"
    assert resources["files"].store().stat(coffee["file_id"]).sha256 == coffee["sha256"]
    encoder = resources["models"].registry().target(COCO)
    schema = COCO.embeddings_schema(encoder)
    assert {"embedding", "image_features", "labels", "encoder_fingerprint", "dagster_run_id"} <= set(schema.column_names)
    vectors = lake.table(schema).read_partition(SHARD, ("embedding", "image_features", "labels", "encoder_fingerprint"))
    cat = next(v for v in vectors if v["row_key"] == "coco:900002")
    assert cat["embedding"].shape[1] == 384 and np.isfinite(cat["embedding"]).all() and cat["image_features"].shape == (1280,)
    assert cat["labels"]["labels"][0]["name"] in {"Egyptian cat", "tabby", "tiger cat"} and cat["encoder_fingerprint"] == encoder.fingerprint
    assert embeddings.metadata["cached"] is False and embeddings.metadata["rows"] == 3 and embeddings.metadata["items_embedded"] == 3
    assert embeddings.metadata["items_per_second"] > 0 and "Egyptian cat" in embeddings.metadata["preview"].value


def test_rematerializing_a_shard_gives_the_same_rows_versions_and_cached_embeddings(resources, instance):
    first = ingest(resources, instance)
    lake = resources["lake"].lake()
    snapshot = {s.name: [(r["row_key"], r["file_id"]) for r in lake.table(s).read_partition(SHARD)] for s in (COCO_FILES, COCO_IMAGES)}
    again = ingest(resources, instance)
    assert again[2].metadata["cached"] is True and again[2].metadata["items_embedded"] == 0
    assert again[0].data_version == first[0].data_version  # same bytes, same version: nothing marked stale
    for schema in (COCO_FILES, COCO_IMAGES):
        assert [(r["row_key"], r["file_id"]) for r in lake.table(schema).read_partition(SHARD)] == snapshot[schema.name]
        assert len(lake.table(schema)) == 3


def test_changed_source_bytes_change_the_data_version_and_equal_bytes_do_not(resources, instance, tmp_path):
    path = tmp_path / "shard.parquet"
    source = {**resources, "coco_source": CocoSourceResource(data_files=[str(path)])}
    items = sample_items()[:3]
    write_coco_parquet(items, path)
    original = invoke(coco_files, SHARD, source, instance).data_version
    flipped = Image.open(io.BytesIO(items[2]["image"]["bytes"])).transpose(Image.FLIP_LEFT_RIGHT)
    write_coco_parquet([*items[:2], {**items[2], "image": {"bytes": jpeg_bytes(flipped), "path": None}}], path)
    changed = invoke(coco_files, SHARD, source, instance).data_version
    write_coco_parquet(items, path)
    assert changed != original == invoke(coco_files, SHARD, source, instance).data_version


def test_bad_items_are_skipped_counted_and_listed(resources, instance, tmp_path):
    items = sample_items()[:3]
    items[1]["image"] = {"bytes": items[1]["image"]["bytes"][:500], "path": "cut.jpg"}
    source = CocoSourceResource(data_files=[str(write_coco_parquet(items, tmp_path / "s.parquet"))], shard_size=3)
    result = invoke(coco_files, SHARD, {**resources, "coco_source": source}, instance)
    assert result.metadata["files"] == 2 and result.metadata["skipped"] == 1
    assert "image_id 900002" in result.metadata["skipped_items"].value


def test_a_failing_shard_leaves_stored_shards_untouched(resources, instance, tmp_path):
    ingest(resources, instance)
    lake = resources["lake"].lake()
    version = lake.table(COCO_FILES).version
    source = CocoSourceResource(shard_size=3, on_bad_record="fail",
                                data_files=[str(write_coco_parquet([{**sample_items()[0], "height": None}], tmp_path / "b.parquet"))])
    with pytest.raises(BadRecordError, match="missing field"):
        invoke(coco_files, SHARD, {**resources, "coco_source": source}, instance)
    with pytest.raises(BadRecordError, match="shard-00009 is empty"):
        invoke(coco_files, "shard-00009", resources, instance)
    assert lake.table(COCO_FILES).version == version and lake.table(COCO_FILES).partition_counts() == {SHARD: 3}


def test_an_active_model_that_is_no_longer_installed_is_refused_for_search_but_can_be_replaced(resources, instance):
    from dlk_assets.defs.pipeline.readiness import evaluate_gate
    from dlk_assets.defs.pipeline.serving import search_served
    from dlk_assets.models.active import ActiveModel, write_active

    ingest(resources, instance)
    lake, registry = resources["lake"].lake(), resources["models"].registry()
    target = registry.target(COCO)
    # As after a package upgrade: the cut-over fingerprint is not what the installed model produces.
    write_active(lake, ActiveModel("coco", target.name, "efficientnet-lite0+minilm-l6@000000000000", "gone", "v0", {}, "then", "r"))
    with pytest.raises(LookupError, match="backfill the embeddings and run the cutover"):
        search_served(COCO, lake, registry, "a cat")
    again = invoke(definitions(resources).get_assets_def(COCO.embeddings_asset), SHARD, resources, instance)
    assert again.metadata["cached"] is True and again.metadata["also_written"] == "none"
    gate = evaluate_gate(COCO, lake, registry)
    assert gate.decision.passed and gate.active is None  # the installed model may take over once it has every row
