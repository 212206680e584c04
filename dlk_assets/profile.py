"""The deployment profile: the one place that reads environment settings and picks implementations.

DLK_PROFILE      local (default): local Deep Lake + local file store under $DAGSTER_HOME
DLK_IMAGE_ENCODER efficientnet-minilm (default, offline CPU) or colqwen3 (GPU, HF cache or DLK_MODEL_PATH)
DLK_DEVICE       auto (default), cpu, cuda, cuda:N
VIDEO_CHUNK_DURATION_S seconds per video chunk (default 4, sized for the generated sample); 0 disables chunking
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

PROFILES = ("local",)


@dataclass(frozen=True)
class Profile:
    name: str
    image_encoder: str
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
        image_encoder=os.environ.get("DLK_IMAGE_ENCODER", "efficientnet-minilm"),
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
        ImageEncoderResource,
        LocalFileStoreResource,
        LocalLakeResource,
        SmartSpacesSourceResource,
        SweTraceSourceResource,
        TextEncoderResource,
    )

    profile = profile or current_profile()
    return {
        "lake": LocalLakeResource(),
        "files": LocalFileStoreResource(),
        "image_encoder": ImageEncoderResource(name=profile.image_encoder, device=profile.device, model_path=profile.model_path),
        "coco_source": CocoSourceResource(),
        "smartspaces_source": SmartSpacesSourceResource(chunk_duration_s=profile.chunk_duration_s),
        "text_encoder": TextEncoderResource(device=profile.device),
        "swe_source": SweTraceSourceResource(),
    }


def configured_encoder_fingerprint() -> str:
    """The fingerprint of the profile's image encoder, used as the embedding assets' `code_version`.

    A model change thereby marks the embeddings and everything downstream as changed in the UI.
    """
    return profile_resources()["image_encoder"].encoder().fingerprint


def configured_text_encoder_fingerprint() -> str:
    """The fingerprint of the profile's text encoder (the memory embeddings' `code_version`)."""
    return profile_resources()["text_encoder"].encoder().fingerprint
