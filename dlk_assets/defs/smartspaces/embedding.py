"""How a video chunk becomes vectors: sample frames from the chunk's own bytes, stack their vectors.

MaxSim then finds a chunk by its best frame. Where the encoder has pooled image features (as for COCO
images), the chunk also gets `image_features`: the mean of its frames' features, for search by example.
The frames per chunk is a setting stored with every vector, so changing it re-embeds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.encoders.base import Encoder, ImageEncoding, Output, normalize_rows
from dlk_assets.encoders.clips import encode_clips
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.schema import Column, Kind
from dlk_assets.media.frames import SampledFrame, sample_frames


def chunk_columns(encoder: Encoder) -> tuple[Column, ...]:
    """The frame bag and what each sampled frame showed, plus `image_features` when the encoder produces them."""
    columns = [Column("embedding", Kind.MULTI_VECTOR, encoder.dim), Column("frames", Kind.JSON)]
    if Output.IMAGE_FEATURES in encoder.outputs:
        columns.append(Column("image_features", Kind.VECTOR, encoder.feature_dim))
    return tuple(columns)


def pool_frame_features(features: np.ndarray) -> np.ndarray:
    """A clip's image features from its frames' (frames, feature_dim) unit features: their mean, at unit length."""
    return normalize_rows(np.asarray(features, dtype=np.float32).mean(axis=0))


def clip_features(encoder: Encoder, frames: Sequence[SampledFrame]) -> np.ndarray:
    """The pooled image features of one clip's sampled frames, as a chunk's `image_features` are made
    (what search by example encodes a video query with)."""
    if not frames:
        raise ValueError("a clip needs at least one sampled frame")
    return pool_frame_features(encoder.encode_images([frame.image for frame in frames]).features)


class _KeepFeatures:
    """The encoder as `encode_clips` sees it, keeping the features of each `encode_images` call:
    `encode_clips` keeps only the frame bags and labels, and a second pass for the features would
    double the cost of embedding."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.features: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def encode_images(self, images: Sequence[Image.Image]) -> ImageEncoding:
        encoding = self.encoder.encode_images(images)
        self.features.append(encoding.features)
        return encoding


def chunk_settings(smartspaces_source) -> dict[str, Any]:
    """The knob that changes a chunk's vectors: how many frames are sampled from it."""
    return {"frames_per_chunk": smartspaces_source.frames_per_chunk}


def embed_chunks(rows: list[dict[str, Any]], encoder: Encoder, store: FileStore, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One value dict per chunk row: the frame bag and, per frame, its time and labels; the pooled
    `image_features` when the encoder has them (from the same forward pass)."""
    with tempfile.TemporaryDirectory(prefix="dlk-frames-") as work:
        clips = [sample_frames(store.download(row["file_id"], Path(work) / f"{i:05d}.mp4"), settings["frames_per_chunk"])
                 for i, row in enumerate(rows)]
    kept = _KeepFeatures(encoder)
    embeddings = encode_clips(kept, clips, [row["start_s"] for row in rows])
    values: list[dict[str, Any]] = [{"embedding": e.vectors, "frames": {"frames": e.frames}} for e in embeddings]
    if Output.IMAGE_FEATURES in encoder.outputs:
        # encode_clips encodes every frame of every clip, in clip order; each clip owns the next len(frames).
        features, position = np.concatenate(kept.features), 0
        for value, frames in zip(values, clips):
            value["image_features"] = pool_frame_features(features[position:position + len(frames)])
            position += len(frames)
    return values


def frame_labels_preview(rows: list[dict[str, Any]]) -> str:
    """Each sampled frame's time and what the encoder saw in it."""
    return markdown_table(("video_id", "chunk", "time_s", "labels"), [
        (row["video_id"], row["chunk_index"], frame["time_s"], ", ".join(label["name"] for label in frame["labels"]))
        for row in rows for frame in row["frames"]["frames"]])
