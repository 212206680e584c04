"""The deployment profile: the one place that reads environment settings and picks implementations.

DLK_PROFILE      local (default): local Deep Lake + local file store under $DAGSTER_HOME
DLK_IMAGE_ENCODER efficientnet-minilm (default, offline CPU) or colqwen3 (GPU, HF cache or DLK_MODEL_PATH)
DLK_DEVICE       auto (default), cpu, cuda, cuda:N
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILES = ("local",)


@dataclass(frozen=True)
class Profile:
    name: str
    image_encoder: str
    device: str
    model_path: str


def current_profile() -> Profile:
    """Settings from the environment, validated."""
    name = os.environ.get("DLK_PROFILE", "local")
    if name not in PROFILES:
        raise ValueError(f"DLK_PROFILE={name!r} is not a known profile; choose one of {PROFILES}")
    return Profile(
        name=name,
        image_encoder=os.environ.get("DLK_IMAGE_ENCODER", "efficientnet-minilm"),
        device=os.environ.get("DLK_DEVICE", "auto"),
        model_path=os.environ.get("DLK_MODEL_PATH", ""),
    )


def profile_resources(profile: Profile | None = None) -> dict:
    """The resources for a profile, keyed as the assets expect them."""
    from dlk_assets.resources import CocoSourceResource, ImageEncoderResource, LocalFileStoreResource, LocalLakeResource

    profile = profile or current_profile()
    return {
        "lake": LocalLakeResource(),
        "files": LocalFileStoreResource(),
        "image_encoder": ImageEncoderResource(name=profile.image_encoder, device=profile.device, model_path=profile.model_path),
        "coco_source": CocoSourceResource(),
    }
