"""Encoders by name, so configuration (and the UI) can pick one without importing model code."""

from __future__ import annotations

from functools import lru_cache

from dlk_assets.encoders.base import Encoder

IMAGE_ENCODERS = ("efficientnet-minilm", "colqwen3")


@lru_cache(maxsize=8)
def image_encoder(name: str = "efficientnet-minilm", device: str = "auto", model_path: str = "") -> Encoder:
    """The image/text encoder called `name` (cached per process: models load once)."""
    if name == "efficientnet-minilm":
        from dlk_assets.encoders.efficientnet_labels import EfficientNetLabelEncoder

        return EfficientNetLabelEncoder(device=device)
    if name == "colqwen3":
        from dlk_assets.encoders.colqwen import MODEL_ID, ColQwen3Encoder

        return ColQwen3Encoder(model=model_path or MODEL_ID, device=device)
    raise ValueError(f"unknown image encoder {name!r}; choose one of {IMAGE_ENCODERS}")


@lru_cache(maxsize=4)
def text_encoder(device: str = "auto"):
    """The MiniLM text encoder (pooled 384-d vectors), cached per process."""
    from dlk_assets.encoders.minilm import MiniLMTextEncoder

    return MiniLMTextEncoder(device=device)
