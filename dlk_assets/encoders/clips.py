"""Embed a video clip as a bag of its sampled frames' vectors (MaxSim then finds it by its best frame)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlk_assets.encoders.base import Encoder, normalize_rows
from dlk_assets.media.frames import SampledFrame


@dataclass(frozen=True)
class ClipEmbedding:
    """A clip's multi-vector, per frame its time and (when the encoder names what it sees) labels, and
    (when the encoder has pooled image features) the clip's: its frames' mean, at unit length."""

    vectors: np.ndarray
    frames: list[dict[str, Any]]
    features: np.ndarray | None = None


def pool_frame_features(features: np.ndarray) -> np.ndarray:
    """A clip's image features from its frames' (frames, feature_dim) unit features: their mean, at unit length."""
    return normalize_rows(np.asarray(features, dtype=np.float32).mean(axis=0))


def encode_clips(encoder: Encoder, clips: Sequence[Sequence[SampledFrame]], start_times: Sequence[float]) -> list[ClipEmbedding]:
    """One `ClipEmbedding` per clip; all frames of all clips go through the encoder in one batch."""
    if any(not frames for frames in clips):
        raise ValueError("every clip needs at least one sampled frame")
    images = [frame.image for frames in clips for frame in frames]
    encoding = encoder.encode_images(images)
    labels = encoding.labels if encoding.labels is not None else [[] for _ in images]
    embeddings, position = [], 0
    for frames, start in zip(clips, start_times):
        frame_bags = encoding.bags[position:position + len(frames)]
        frame_labels = labels[position:position + len(frames)]
        features = None if encoding.features is None else pool_frame_features(encoding.features[position:position + len(frames)])
        position += len(frames)
        info = [{"time_s": round(start + frame.offset_s, 3),
                 "labels": [{"name": name, "probability": round(p, 6)} for name, p in names]}
                for frame, names in zip(frames, frame_labels)]
        embeddings.append(ClipEmbedding(np.concatenate([np.atleast_2d(b) for b in frame_bags]).astype(np.float32), info, features))
    return embeddings
