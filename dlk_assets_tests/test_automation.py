"""Automation: a shard registered by the sensor reaches the index, the cutover and the slices with nobody
clicking, evaluated with Dagster's own automation-condition evaluator and real runs on real data."""

import dagster as dg

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.spec import COCO
from dlk_assets.resources import CocoSourceResource

from .conftest import definitions, sample_resources


def run_ingest(defs, instance, resources, sensor_result) -> list[str]:
    """What the daemon does with a sensor tick: add the partitions, run the ingest job per request."""
    for request in sensor_result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assets = [*defs.assets, *defs.asset_checks]
    for request in sensor_result.run_requests:
        dg.materialize(assets, selection=dg.AssetSelection.assets(*COCO.ingest_assets), instance=instance,
                       resources=resources, partition_key=request.partition_key)
    return [request.partition_key for request in sensor_result.run_requests]


def run_automation(defs, instance, resources, cursor=None, max_ticks=8):
    """Evaluate the automation conditions and run what they request, tick after tick, until quiet.

    Returns the names requested per tick and the last cursor.
    """
    graph = defs.resolve_asset_graph()
    assets = [*defs.assets, *defs.asset_checks]
    # As the daemon does: a check with its own automation condition runs only when requested itself.
    own_condition = dg.AssetSelection.checks(*(k for k in graph.asset_check_keys if graph.get(k).automation_condition))
    ticks = []
    for _ in range(max_ticks):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        requested = {key for key in graph.toposorted_asset_keys if result.get_requested_partitions(key)}
        requested |= {r.key for r in result.results if isinstance(r.key, dg.AssetCheckKey) and r.true_subset.size}
        if not requested:
            return ticks, cursor
        names = []
        for key in graph.toposorted_asset_keys:  # upstream first, as one run of the daemon would
            if key not in requested:
                continue
            for partition in sorted(result.get_requested_partitions(key), key=str):
                dg.materialize(assets, selection=dg.AssetSelection.assets(key) - own_condition, instance=instance,
                               resources=resources, partition_key=partition)
            names.append(key.to_user_string())
        checks = [k for k in requested if isinstance(k, dg.AssetCheckKey)]
        if checks:
            dg.materialize(assets, selection=dg.AssetSelection.checks(*checks), instance=instance, resources=resources)
        ticks.append(sorted(names + [k.name for k in checks]))
    raise AssertionError(f"automation did not settle in {max_ticks} ticks: {ticks}")


def latest(instance, asset, partition=None):
    event = instance.get_latest_materialization_event(dg.AssetKey(asset)) if partition is None else \
        instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), 1).records[0].event_log_entry
    return event.asset_materialization


def test_a_new_shard_reaches_the_index_and_the_slices_with_nobody_clicking(dagster_home):
    resources = sample_resources(coco_source=CocoSourceResource(max_new_shards_per_tick=2))
    defs = definitions(resources)
    sensor = COCO.sensors[0]
    with dg.DagsterInstance.get() as instance:
        # The automation sensor runs from the first `dagster dev`: it has ticked (quietly) before data arrives.
        quiet, cursor = run_automation(defs, instance, resources)
        assert quiet == []
        first = sensor(dg.build_sensor_context(instance=instance, resources={"coco_source": resources["coco_source"]}))
        assert run_ingest(defs, instance, resources, first) == ["shard-00000", "shard-00001"]
        ticks, cursor = run_automation(defs, instance, resources, cursor)
        # Rows and vectors per new partition; once they are all in, the coverage check and the index; then
        # the cutover once every check of that index run passed; then the slices.
        assert ticks == [["coco_image_embeddings", "coco_images"], ["coco_embedded_by_target", "coco_index"],
                         ["coco_active_model"], ["coco_slices"]]
        index = latest(instance, "coco_index").metadata
        assert index["partitions"].value == 2 and index["dagster/row_count"].value == 6
        for check in ("coco_counts_match", "coco_vectors_valid", "coco_index_used", "coco_cutover_gate"):
            key = dg.AssetCheckKey(dg.AssetKey("coco_index"), check)
            assert instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key].status.value == "SUCCEEDED"
        cats_before = latest(instance, "coco_slices", "coco_cats")

        # A new item arrives: the next sensor tick registers it, automation carries it all the way.
        second = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                                resources={"coco_source": resources["coco_source"]}))
        assert run_ingest(defs, instance, resources, second) == ["shard-00002"]
        ticks, cursor = run_automation(defs, instance, resources, cursor)
        assert ticks == [["coco_image_embeddings", "coco_images"], ["coco_embedded_by_target", "coco_index"],
                         ["coco_active_model"], ["coco_slices"]]
        assert latest(instance, "coco_index").metadata["partitions"].value == 3
        assert latest(instance, "coco_image_embeddings", "shard-00002") is not None
        assert latest(instance, "coco_slices", "coco_cats").metadata["table_version"] != cats_before.metadata["table_version"]
        assert run_automation(defs, instance, resources, cursor)[0] == []  # settled: nothing runs twice
        third = sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor,
                                               resources={"coco_source": resources["coco_source"]}))
        assert not third.run_requests and "no shard at index 3 yet" in third.skip_reason.skip_message
        assert sorted(instance.get_dynamic_partitions(coco_shards.name)) == ["shard-00000", "shard-00001", "shard-00002"]
