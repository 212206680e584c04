"""Shared fixtures: a throwaway DAGSTER_HOME with real lake, file store and encoders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dlk_assets.resources import (
    CocoSourceResource,
    ImageEncoderResource,
    LocalFileStoreResource,
    LocalLakeResource,
    SmartSpacesSourceResource,
    SweTraceSourceResource,
    TextEncoderResource,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    """An empty instance folder with the project's dagster.yaml, set as DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def sample_resources() -> dict:
    """Real local resources under $DAGSTER_HOME, the bundled and generated samples as sources, CPU models."""
    return {
        "lake": LocalLakeResource(),
        "files": LocalFileStoreResource(),
        "image_encoder": ImageEncoderResource(device="cpu"),
        "coco_source": CocoSourceResource(),
        "smartspaces_source": SmartSpacesSourceResource(),
        "text_encoder": TextEncoderResource(device="cpu"),
        "swe_source": SweTraceSourceResource(),
    }


@pytest.fixture
def resources(dagster_home) -> dict:
    """Real local resources under the temporary DAGSTER_HOME."""
    return sample_resources()
