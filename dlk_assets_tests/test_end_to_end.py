"""The whole sample graph materialized into a temporary DAGSTER_HOME, searched, sliced and re-run."""

import hashlib
import json

import dagster as dg
import pytest

from dlk_assets.cli import main as dlk
from dlk_assets.defs.coco.search import coco_embeddings_table, coco_text_search
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.demo import materialize_everything
from dlk_assets.sources.coco_sample import SAMPLE_ANNOTATIONS

IMAGE_IDS = sorted(image_id for _, image_id, _ in SAMPLE_ANNOTATIONS)


@pytest.fixture
def materialized(resources, dagster_home):
    with dg.DagsterInstance.get() as instance:
        materialize_everything(instance, resources, log=lambda _: None)
        yield instance


def table_snapshot(resources):
    lake = resources["lake"].lake()
    encoder = resources["image_encoder"].encoder()
    tables = [lake.table(COCO_FILES), lake.table(COCO_IMAGES), coco_embeddings_table(lake, encoder)]
    return {t.schema.name: sorted((r["row_key"], r["partition"], r["file_id"], r["sha256"])
                                  for p in t.partition_counts() for r in t.read_partition(p, ("partition", "file_id", "sha256")))
            for t in tables}


def test_sample_graph_materializes_and_search_finds_the_right_photos(materialized, resources):
    instance = materialized
    assert sorted(instance.get_dynamic_partitions("coco_shards")) == ["shard-00000", "shard-00001", "shard-00002"]
    snapshot = table_snapshot(resources)
    for rows in snapshot.values():
        assert sorted(int(key.split(":")[1]) for key, *_ in rows) == IMAGE_IDS
    encoder = resources["image_encoder"].encoder()
    table = coco_embeddings_table(resources["lake"].lake(), encoder)
    assert coco_text_search(table, encoder, "a cat", k=3)[0].values["image_id"] == 900002
    assert coco_text_search(table, encoder, "a cup of coffee", k=3)[0].values["image_id"] == 900003
    wide = coco_text_search(table, encoder, "a cat", k=10, where="width >= 500")
    assert wide and all(hit.values["width"] >= 500 for hit in wide) and 900002 not in [h.values["image_id"] for h in wide]


def test_index_checks_pass_and_are_recorded(materialized):
    for check in ("coco_counts_match", "coco_vectors_valid", "coco_index_exists"):
        key = dg.AssetCheckKey(dg.AssetKey("coco_index"), check)
        summary = materialized.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert summary.status.value == "SUCCEEDED", check


def test_slices_export_files_that_match_the_store_and_the_pinned_version(materialized, resources, dagster_home):
    manifest = json.loads((dagster_home / "slices" / "coco_cats" / "manifest.json").read_text())
    assert manifest["slice"]["query"] == "a cat" and manifest["slice"]["where"] == "width >= 300"
    assert manifest["model_fingerprint"] == resources["image_encoder"].encoder().fingerprint
    assert manifest["items"][0]["image_id"] == 900002 and len(manifest["items"]) == 2
    store = resources["files"].store()
    for item in manifest["items"]:
        data = (dagster_home / "slices" / "coco_cats" / item["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] == store.stat(item["file_id"]).sha256
    table = coco_embeddings_table(resources["lake"].lake(), resources["image_encoder"].encoder())
    pinned = table.open_tag(manifest["table_tag"])
    assert pinned.version == manifest["table_version"]
    coffee = json.loads((dagster_home / "slices" / "coco_coffee" / "manifest.json").read_text())
    assert coffee["items"][0]["image_id"] == 900003


def test_running_everything_again_gives_the_same_tables(materialized, resources):
    before = table_snapshot(resources)
    materialize_everything(materialized, resources, log=lambda _: None)
    assert table_snapshot(resources) == before


def test_cli_search_prints_a_ranked_table(materialized, capsys):
    assert dlk(["search", "coco", "a cat", "--k", "5", "--where", "width >= 300"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["rank", "score", "image_id", "file_id"]
    assert lines[1].split()[0] == "1" and lines[1].split()[2] == "900002" and len(lines) == 6
    assert dlk(["search", "coco", "a cat", "--where", "width >= 'x'"]) == 1
    assert "numeric" in capsys.readouterr().err
