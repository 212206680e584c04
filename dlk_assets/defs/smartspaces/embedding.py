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

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.encoders.base import Encoder, Output
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


def clip_features(encoder: Encoder, frames: Sequence[SampledFrame]) -> np.ndarray:
    """The pooled image features of one clip's sampled frames, as a chunk's `image_features` are made
    (what search by example encodes a video query with)."""
    (clip,) = encode_clips(encoder, [frames], [0.0])
    if clip.features is None:
        raise ValueError(f"{encoder.name} makes no image features")
    return clip.features


def chunk_settings(smartspaces_source) -> dict[str, Any]:
    """The knob that changes a chunk's vectors: how many frames are sampled from it."""
    return {"frames_per_chunk": smartspaces_source.frames_per_chunk}


def embed_chunks(rows: list[dict[str, Any]], encoder: Encoder, store: FileStore, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One value dict per chunk row: the frame bag and, per frame, its time and labels; the pooled
    `image_features` when the encoder has them (from the same forward pass)."""
    with tempfile.TemporaryDirectory(prefix="dlk-frames-") as work:
        clips = [sample_frames(store.download(row["file_id"], Path(work) / f"{i:05d}.mp4"), settings["frames_per_chunk"])
                 for i, row in enumerate(rows)]
    embeddings = encode_clips(encoder, clips, [row["start_s"] for row in rows])
    values: list[dict[str, Any]] = [{"embedding": e.vectors, "frames": {"frames": e.frames}} for e in embeddings]
    if Output.IMAGE_FEATURES in encoder.outputs:
        for value, embedding in zip(values, embeddings):
            value["image_features"] = embedding.features
    return values


def frame_labels_preview(rows: list[dict[str, Any]]) -> str:
    """Each sampled frame's time and what the encoder saw in it."""
    return markdown_table(("video_id", "chunk", "time_s", "labels"), [
        (row["video_id"], row["chunk_index"], frame["time_s"], ", ".join(label["name"] for label in frame["labels"]))
        for row in rows for frame in row["frames"]["frames"]])
