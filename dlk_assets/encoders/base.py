"""The encoder interface and the helpers every encoder shares (device choice, batching, fingerprints)."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from importlib import metadata
from typing import Any

import numpy as np
from PIL import Image


def resolve_device(device: str = "auto") -> str:
    """`auto` picks CUDA when present; `cpu`/`cuda`/`cuda:N` force a device (and fail clearly if absent)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but this machine has no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    return device


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not-installed"


def make_fingerprint(model_id: str, revision: str, params: dict[str, Any]) -> str:
    """`<model_id>@<hash of revision and preprocessing>`: changes whenever outputs may change."""
    payload = json.dumps({"revision": revision, "params": params}, sort_keys=True)
    return f"{model_id}@{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class Encoder(ABC):
    """Turns texts, images and video frames into vectors in one shared space.

    Multi-vector encoders return one (tokens, dim) array per input; single-vector ones (dim,).
    """

    #: model id, revision and preprocessing, so a change shows as a new code version in Dagster
    fingerprint: str
    dim: int
    multi_vector: bool

    @abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Query-side vectors for texts."""

    @abstractmethod
    def encode_images(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Document-side vectors for images."""

    def encode_video_frames(self, frames: Sequence[Image.Image]) -> np.ndarray:
        """One multi-vector for a clip: the frames' vectors stacked, so MaxSim finds it by its best frame."""
        if not frames:
            raise ValueError("a clip needs at least one frame")
        vectors = self.encode_images(frames)
        return np.concatenate([np.atleast_2d(v) for v in vectors], axis=0)
