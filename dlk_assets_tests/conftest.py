"""Shared fixtures: a throwaway DAGSTER_HOME with real lake, file store, model registry and encoders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dlk_assets.resources import (
    CocoSourceResource,
    DocumentSourceResource,
    LocalFileStoreResource,
    LocalLakeResource,
    ModelsResource,
    SmartSpacesSourceResource,
    SweTraceSourceResource,
)

REPO = Path(__file__).resolve().parent.parent


def make_home(folder: Path) -> Path:
    """An instance folder with the project's dagster.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    return folder


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    """An empty instance folder with the project's dagster.yaml, set as DAGSTER_HOME."""
    home = make_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DLK_MODELS_FILE", raising=False)
    monkeypatch.delenv("DLK_IMAGE_ENCODER", raising=False)
    return home


def sample_resources(**sources: Any) -> dict:
    """Real local resources under $DAGSTER_HOME, the bundled and generated samples as sources, CPU models."""
    return {
        "lake": LocalLakeResource(),
        "files": LocalFileStoreResource(),
        "models": ModelsResource(device="cpu"),
        "coco_source": sources.get("coco_source", CocoSourceResource()),
        "smartspaces_source": sources.get("smartspaces_source", SmartSpacesSourceResource()),
        "swe_source": sources.get("swe_source", SweTraceSourceResource()),
        "documents_source": sources.get("documents_source", DocumentSourceResource()),
    }


@pytest.fixture
def resources(dagster_home) -> dict:
    """Real local resources under the temporary DAGSTER_HOME."""
    return sample_resources()


def definitions(resources: dict) -> dg.Definitions:
    """The project's definitions as `dagster dev` would load them now (code versions follow the registry)."""
    from dlk_assets.defs.pipeline.build import build_definitions
    from dlk_assets.defs.sources import SOURCES

    return build_definitions(list(SOURCES.values()), resources["models"].registry(), resources)


def invoke(asset: dg.AssetsDefinition, partition_key: str | None, resources: dict, instance: dg.DagsterInstance | None = None,
           **config):
    """Call an asset directly, the way Dagster's testing docs do, with real resources (and run config objects)."""
    needed = {key: resources[key] for key in asset.required_resource_keys if key in resources}
    return asset(dg.build_asset_context(partition_key=partition_key, resources=needed, instance=instance), **config)


@pytest.fixture
def s3(monkeypatch):
    """A real moto S3 server on 127.0.0.1 with one bucket; boto3 and Deep Lake reach it through the env."""
    import boto3

    from .local_servers import moto_server

    with moto_server() as endpoint:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(name, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket="dlk")
        yield client


# The session's `dlk serve` over a fully materialized lake, shared by the service and search page tests.
from dlk_assets_tests.service_fixtures import demo_service  # noqa: F401
