"""The encoder interface and the helpers every encoder shares (device choice, batching, fingerprints).

An encoder says what it produces (`outputs`), so the tables and assets built from it follow from
that description alone; no caller needs to know an encoder's class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
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


class Output(str, Enum):
    """What an encoder can produce for the documents it embeds."""

    MULTI_VECTOR = "multi_vector"  # a bag of unit vectors per item, searched with MaxSim
    POOLED = "pooled"  # one unit vector per text, searched with cosine
    IMAGE_FEATURES = "image_features"  # pooled visual features per image (image-to-image search)
    LABELS = "labels"  # named classes with probabilities per image


@dataclass(frozen=True)
class ImageEncoding:
    """What an encoder made of a batch of images; what it does not produce is None."""

    bags: list[np.ndarray]  # one (tokens, dim) array per image
    features: np.ndarray | None = None  # (n, feature_dim) unit vectors, with Output.IMAGE_FEATURES
    labels: list[list[tuple[str, float]]] | None = None  # per image, with Output.LABELS


class Encoder:
    """Turns documents (images or texts) and text queries into vectors in one shared space.

    `modality` is what documents it embeds; `outputs` what it produces for them. Image encoders
    answer `encode_images` and `encode_query_tokens`; text encoders `encode_pooled` and
    `encode_query_tokens`. Asking for something an encoder does not produce is a clear error.
    """

    #: the registry name, e.g. efficientnet-lite0
    name: str
    #: model id, revision and preprocessing, so a change shows as a new code version in Dagster
    fingerprint: str
    dim: int
    modality: str  # "image" or "text"
    outputs: frozenset[Output]
    feature_dim: int | None = None
    device: str = "cpu"

    @property
    def model_id(self) -> str:
        """The model's identifier as a vector record's `model` field names it (`all-MiniLM-L6-v2`): the
        fingerprint's model id without its organisation or its revision hash."""
        return self.fingerprint.split("@", 1)[0].rsplit("/", 1)[-1]

    def load(self) -> None:
        """Load the weights now (they load lazily otherwise), so timing a batch measures only encoding."""

    def encode_images(self, images: Sequence[Image.Image]) -> ImageEncoding:
        """Document-side vectors for images (and features and labels where the encoder has them)."""
        raise NotImplementedError(f"encoder {self.name} does not embed images")

    def encode_query_tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Query-side multi-vectors: one (tokens, dim) array per text, for MaxSim."""
        raise NotImplementedError(f"encoder {self.name} has no token vectors for queries")

    def encode_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """One (dim,) unit vector per text, as an (n, dim) array."""
        raise NotImplementedError(f"encoder {self.name} has no pooled text vectors")


class QueryCache:
    """An encoder that encodes each pooled text once and hands back the same vector after: for
    evaluations that ask every search mode and split the same queries. Everything else passes through."""

    def __init__(self, encoder: Encoder):
        self.encoder, self.vectors = encoder, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def encode_pooled(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.encoder.encode_pooled(missing)))
        return np.stack([self.vectors[t] for t in texts])
