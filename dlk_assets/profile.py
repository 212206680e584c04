"""The deployment profile: the one place that reads environment settings and picks implementations.

DLK_PROFILE      local (default): local Deep Lake + local file store under $DAGSTER_HOME
DLK_DEVICE       auto (default), cpu, cuda, cuda:N
DLK_MODEL_PATH   colqwen3 only: a snapshot folder instead of the Hugging Face cache
VIDEO_CHUNK_DURATION_S seconds per video chunk (default 4, sized for the generated sample); 0 disables chunking
Encoders are chosen by the model registry (`dlk_assets.models.settings`: DLK_MODELS_FILE, DLK_IMAGE_ENCODER,
DLK_TEXT_ENCODER).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

PROFILES = ("local",)


@dataclass(frozen=True)
class Profile:
    name: str
    device: str
    model_path: str
    chunk_duration_s: float


def current_profile() -> Profile:
    """Settings from the environment, validated."""
    name = os.environ.get("DLK_PROFILE", "local")
    if name not in PROFILES:
        raise ValueError(f"DLK_PROFILE={name!r} is not a known profile; choose one of {PROFILES}")
    return Profile(
        name=name,
        device=os.environ.get("DLK_DEVICE", "auto"),
        model_path=os.environ.get("DLK_MODEL_PATH", ""),
        chunk_duration_s=_chunk_duration(os.environ.get("VIDEO_CHUNK_DURATION_S", "4")),
    )


def _chunk_duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"VIDEO_CHUNK_DURATION_S={text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"VIDEO_CHUNK_DURATION_S={text!r} must be a finite number >= 0 (0 disables chunking)")
    return value


def profile_resources(profile: Profile | None = None) -> dict:
    """The resources for a profile, keyed as the assets expect them."""
    from dlk_assets.resources import (
        CocoSourceResource,
        LocalFileStoreResource,
        LocalLakeResource,
        ModelsResource,
        SmartSpacesSourceResource,
        SweTraceSourceResource,
    )

    profile = profile or current_profile()
    return {
        "lake": LocalLakeResource(),
        "files": LocalFileStoreResource(),
        "models": ModelsResource(device=profile.device, model_path=profile.model_path),
        "coco_source": CocoSourceResource(),
        "smartspaces_source": SmartSpacesSourceResource(chunk_duration_s=profile.chunk_duration_s),
        "swe_source": SweTraceSourceResource(),
    }



def load_definitions(profile: Profile | None = None):
    """The whole project's Dagster definitions for a profile; code versions follow the registry's targets."""
    from dlk_assets.defs.pipeline.build import build_definitions
    from dlk_assets.defs.sources import SOURCES

    resources = profile_resources(profile)
    return build_definitions(list(SOURCES.values()), resources["models"].registry(), resources)
