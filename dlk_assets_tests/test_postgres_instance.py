"""The Dagster instance on Postgres (`infra/dagster-postgres.yaml`): a throwaway cluster on 127.0.0.1,
part of the sample graph materialized through it, and runs, materializations and partitions read
back from Postgres itself."""

import shutil

import dagster as dg
import pytest

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.spec import COCO
from dlk_assets.defs.shard_sensors import register_all_shards
from dlk_assets.local_postgres import (
    LocalPostgresError,
    server_bin_dir,
)

from .conftest import REPO, definitions, sample_resources
from .local_servers import throwaway_postgres


@pytest.fixture
def postgres():
    with throwaway_postgres() as running:
        yield running


def query(cluster, sql: str, *params) -> list[tuple]:
    import psycopg2

    env = cluster.env()
    connection = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=cluster.port, user=env["DAGSTER_PG_USER"],
                                  password=cluster.password, dbname=env["DAGSTER_PG_DB"])
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_the_sample_graph_runs_on_a_postgres_instance(tmp_path, monkeypatch, postgres):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster-postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage) and isinstance(instance.event_log_storage, PostgresEventLogStorage)
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        shards = register_all_shards(instance, sample_resources()["coco_source"], coco_shards)
        resources = sample_resources()
        defs = definitions(resources)
        result = dg.materialize([*defs.assets, *defs.asset_checks], selection=dg.AssetSelection.assets(*COCO.ingest_assets),
                                instance=instance, resources=resources, partition_key=shards[0])
        assert result.success

    # What the instance stored, read from Postgres itself, not through Dagster.
    assert query(postgres, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s ORDER BY partition",
                 coco_shards.name) == [(key,) for key in shards]
    assert query(postgres, "SELECT run_id, status FROM runs") == [(result.run_id, "SUCCESS")]
    materialized = query(postgres, "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
    assert materialized == [('["coco_files"]', shards[0])]
    assert not (home / "history").exists() and not (home / "storage" / "runs.db").exists()  # nothing in SQLite


def test_a_failed_step_is_one_dlk_line_naming_it(tmp_path, capsys):
    from dlk_assets.local_postgres import main

    try:
        server_bin_dir()
    except LocalPostgresError as exc:
        pytest.skip(str(exc))
    assert main(["stop", "--dir", str(tmp_path / "no-cluster")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("dlk: pg_ctl stop failed") and "\n" not in error.strip()
