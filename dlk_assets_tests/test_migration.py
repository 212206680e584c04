"""A real model change end to end on the COCO sample: EfficientNet-Lite0 -> Lite2.

The change shows at asset level (a failing check listing the stale partitions, a cost estimate),
the backfill runs, searches are served by Lite0 until the cutover and by Lite2 after, a cutover
whose gate fails is refused and changes nothing, and no row loses its vector or file.
"""

from types import SimpleNamespace

import dagster as dg
import pytest
import yaml

from dlk_assets.cli import main as dlk
from dlk_assets.defs.coco.assets import coco_files, coco_images
from dlk_assets.defs.coco.spec import COCO
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.defs.documents.spec import DOCUMENTS
from dlk_assets.defs.pipeline.serving import model_tables, search_served
from dlk_assets.models.active import ACTIVE_MODELS
from dlk_assets.models.catalog import build_encoder
from dlk_assets.models.settings import default_settings_path, write_source_entry
from dlk_assets.operations import RANGE_END, RANGE_START, Operator, materialize_sources

from .conftest import definitions, make_home, sample_resources

LITE0, LITE2 = "efficientnet-lite0", "efficientnet-lite2"
MINILM, MINILM_BF16 = "minilm", "minilm-bf16"


def ingest(operator, keys):
    """New shards arrive: files per shard, image rows for the range, embeddings (what sensor + automation do)."""
    operator.instance.add_dynamic_partitions(COCO.partitions.name, keys)
    for key in keys:
        operator.run(dg.AssetSelection.assets(coco_files), partition_key=key)
    operator.run(dg.AssetSelection.assets(coco_images), tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
    return operator.run(dg.AssetSelection.assets(COCO.embeddings_asset).without_checks(),
                        tags={RANGE_START: keys[0], RANGE_END: keys[-1]})


def served_by(lake):
    registry = sample_resources()["models"].registry()
    encoder, hits = search_served(COCO, lake, registry, "a wall clock", None, 3)
    return encoder.name, hits


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Two COCO shards ingested, indexed, cut over and sliced with Lite0 (the default)."""
    home = make_home(tmp_path_factory.mktemp("migration") / "dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        for name in ("DLK_MODELS_FILE", "DLK_IMAGE_ENCODER"):
            patch.delenv(name, raising=False)
        resources = sample_resources()
        with dg.DagsterInstance.get() as instance:
            operator = Operator(instance, definitions(resources), resources, log=lambda _: None)
            quiet = dg.evaluate_automation_conditions(defs=operator.defs, instance=instance)  # the sensor ticks from day one
            ingest(operator, ["shard-00000", "shard-00001"])
            operator.build_index(COCO)
            operator.cutover(COCO)
            operator.export_slices(COCO)
            yield SimpleNamespace(home=home, resources=resources, instance=instance, lake=resources["lake"].lake(),
                                  cursor=quiet.cursor, state={})


def active_row(lake):
    return lake.lake.table(ACTIVE_MODELS).read_partition("coco")[0]


def test_1_a_model_change_shows_at_asset_level_with_a_cost_estimate(lake):
    assert served_by(lake.lake)[0] == LITE0 and active_row(lake)["encoder"] == LITE0
    write_source_entry("coco", target=LITE2)
    defs = definitions(lake.resources)
    graph = defs.resolve_asset_graph()
    lite2 = build_encoder(LITE2, "cpu").fingerprint
    for asset in ("coco_image_embeddings", "coco_index", "coco_active_model"):
        assert graph.get(dg.AssetKey(asset)).code_version == lite2
    # The automation sensor notices the new code version and runs the coverage check; the costly
    # backfill itself is not started by automation.
    tick = dg.evaluate_automation_conditions(defs=defs, instance=lake.instance, cursor=lake.cursor)
    requested = {r.key for r in tick.results if isinstance(r.key, dg.AssetCheckKey) and r.true_subset.size}
    assert dg.AssetCheckKey(dg.AssetKey("coco_image_embeddings"), "coco_embedded_by_target") in requested
    assert not tick.get_requested_partitions(dg.AssetKey("coco_image_embeddings"))
    operator = Operator(lake.instance, defs, lake.resources, log=lambda _: None)
    check = operator.check(COCO, "embedded_by_target")
    metadata = {key: getattr(value, "value", value) for key, value in check.metadata.items()}
    assert not check.passed and "2 partition(s) not on efficientnet-lite2: backfill 6 images" in check.description
    assert metadata["partitions_to_embed"] == 2 and metadata["items_to_embed"] == 6 and metadata["target_items_per_second"] > 0
    assert metadata["expected_duration"] != "unknown" and metadata["throughput_source"].startswith("calibrated now")
    assert "| shard-00000 | 3 | efficientnet-lite0 |" in metadata["stale_partitions"]
    observation = lake.instance.fetch_observations(dg.AssetKey("coco_image_embeddings"), limit=1).records[0]
    assert observation.asset_observation.metadata["backfill_estimate/items_to_embed"].value == 6
    lake.state["operator"] = operator


def test_2_a_shard_arriving_mid_migration_reaches_the_serving_model_too(lake):
    outcome = ingest(lake.state["operator"], ["shard-00002"])
    assert outcome.value("coco_image_embeddings", "also_written") == LITE0
    tables = {name: count for name in model_tables(COCO, lake.lake)
              for count in [sum(lake.lake.table(COCO.embeddings_schema(build_encoder(
                  LITE0 if "lite0" in name else LITE2, "cpu"))).partition_counts().values())]}
    assert sorted(tables.values()) == [2, 8]  # Lite2 has only the new shard so far; Lite0 has all 8 images
    encoder, hits = served_by(lake.lake)
    assert encoder == LITE0 and hits[0].values["image_id"] == 900007  # the clock arrived with shard-00002


def test_3_a_cutover_whose_gate_fails_is_refused_and_changes_nothing(lake, capsys):
    # Ask Lite2 to beat Lite0 by 0.5 recall (it cannot), with the target back on Lite0 as before a migration.
    write_source_entry("coco", min_recall_delta=0.5, target=LITE0)
    registry_version = lake.lake.table(ACTIVE_MODELS).version
    slice_before = (lake.home / "slices" / "coco_cats" / "manifest.json").read_text()
    settings_before = yaml.safe_load(default_settings_path().read_text())
    assert dlk(["migrate", "coco", "--to", LITE2]) == 1
    captured = capsys.readouterr()
    assert "every partition embedded by efficientnet-lite2: yes" in captured.out and "gate FAILED" in captured.out
    assert f"coco: target encoder set back to {LITE0}" in captured.out
    assert yaml.safe_load(default_settings_path().read_text()) == settings_before
    assert "| a cat | 1.0000 | 1.0000 |" in captured.out  # both models' recall, side by side
    error = captured.err.strip().splitlines()[-1]  # after Dagster's own run log lines
    assert error.startswith("dlk: coco cutover refused: efficientnet-lite2 recall@3") and error.endswith("efficientnet-lite0 keeps serving")
    write_source_entry("coco", target=LITE2)  # the cutover asset refuses on its own too
    refused = lake.state["operator"].cutover(COCO, fail=False)
    assert not refused.success and "coco cutover refused" in refused.failure
    assert lake.lake.table(ACTIVE_MODELS).version == registry_version and active_row(lake)["encoder"] == LITE0
    assert served_by(lake.lake)[0] == LITE0
    assert (lake.home / "slices" / "coco_cats" / "manifest.json").read_text() == slice_before


def test_4_a_passing_gate_cuts_over_and_searches_move_to_the_new_model(lake, capsys):
    write_source_entry("coco", min_recall_delta=-0.05)
    assert dlk(["migrate", "coco", "--to", LITE2]) == 0
    out = capsys.readouterr().out
    assert "gate passed" in out and "served by efficientnet-lite2 (previously efficientnet-lite0)" in out
    assert "re-exported slices coco_cats, coco_coffee" in out
    record = active_row(lake)
    assert record["encoder"] == LITE2 and record["gate"]["target_recall"] >= record["gate"]["active_recall"] - 0.05
    encoder, hits = served_by(lake.lake)
    # Lite2 also reads a wall clock into the coins photo, so the clock is found but not always first.
    assert encoder == LITE2 and 900007 in [hit.values["image_id"] for hit in hits]
    manifest = (lake.home / "slices" / "coco_cats" / "manifest.json").read_text()
    assert '"encoder": "efficientnet-lite2"' in manifest


def test_5_no_row_lost_its_vector_or_its_file(lake):
    images = lake.lake.table(COCO_IMAGES).read_where(None, ("file_id", "sha256"))
    assert len(images) == 8 == len(lake.lake.table(COCO_FILES))
    store = lake.resources["files"].store()
    assert all(store.stat(row["file_id"]).sha256 == row["sha256"] for row in images)
    for name in (LITE0, LITE2):
        table = lake.lake.table(COCO.embeddings_schema(build_encoder(name, "cpu")))
        assert sorted(row["row_key"] for row in table.read_where(None, ("sha256",))) == sorted(r["row_key"] for r in images), name


def test_6_models_cleanup_and_lineage_after_the_migration(lake, capsys):
    assert dlk(["models"]) == 0
    out = capsys.readouterr().out
    coco = out[out.index("  coco\n"):out.index("  videos\n")]
    assert "active   efficientnet-lite2 (since" in coco and "target   efficientnet-lite2" in coco
    assert "efficientnet-lite0    3/3 partitions embedded" in coco and "efficientnet-lite2    3/3 partitions embedded" in coco
    assert dlk(["lineage", "coco", "900007"]) == 0
    lineage = capsys.readouterr().out
    assert "[retired]" in lineage and "[active+target]" in lineage and "shard-00002" in lineage
    assert dlk(["cleanup", "coco"]) == 0
    assert "coco: removed 1 table(s): coco_image_embeddings__efficientnet-lite0" in capsys.readouterr().out
    assert len(model_tables(COCO, lake.lake)) == 1 and served_by(lake.lake)[0] == LITE2
    assert dlk(["lineage", "coco", "900007"]) == 0 and "[retired]" not in capsys.readouterr().out


def test_7_documents_migrate_to_another_text_encoder_through_the_same_gate(lake, capsys):
    """The seed's migration flow on the documents source (issue: new dataset per model, parallel
    population, compare, cutover, cleanup), on the registry and gate every source uses: MiniLM to its
    bfloat16 variant, which makes vectors of its own."""
    operator = Operator(lake.instance, definitions(lake.resources), lake.resources, log=lambda _: None)
    materialize_sources(operator, [DOCUMENTS])
    registry = lake.resources["models"].registry()
    question = "how do I run the tests"
    encoder, before = search_served(DOCUMENTS, lake.lake, registry, question, None, 3)
    assert encoder.name == MINILM and before
    assert dlk(["migrate", "documents", "--to", MINILM_BF16]) == 0
    out = capsys.readouterr().out
    assert "every partition embedded by minilm-bf16: yes" in out and "gate passed" in out
    assert "documents: served by minilm-bf16 (previously minilm)" in out
    tables = model_tables(DOCUMENTS, lake.lake)
    assert len(tables) == 2  # the old model's table serves until the cutover and stays until cleanup
    encoder, after = search_served(DOCUMENTS, lake.lake, sample_resources()["models"].registry(), question, None, 3)
    assert encoder.name == MINILM_BF16 and encoder.fingerprint != build_encoder(MINILM, "cpu").fingerprint
    assert [hit.row_key for hit in after] and after[0].values["content"]
    assert dlk(["cleanup", "documents"]) == 0
    assert "documents: removed 1 table(s)" in capsys.readouterr().out
    assert len(model_tables(DOCUMENTS, lake.lake)) == 1
