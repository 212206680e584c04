"""Embed a video clip as a bag of its sampled frames' vectors (MaxSim then finds it by its best frame)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlk_assets.encoders.base import Encoder
from dlk_assets.media.frames import SampledFrame


@dataclass(frozen=True)
class ClipEmbedding:
    """A clip's multi-vector and, per frame, its time and (when the encoder names what it sees) labels."""

    vectors: np.ndarray
    frames: list[dict[str, Any]]


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
        position += len(frames)
        info = [{"time_s": round(start + frame.offset_s, 3),
                 "labels": [{"name": name, "probability": round(p, 6)} for name, p in names]}
                for frame, names in zip(frames, frame_labels)]
        embeddings.append(ClipEmbedding(np.concatenate([np.atleast_2d(b) for b in frame_bags]).astype(np.float32), info))
    return embeddings
