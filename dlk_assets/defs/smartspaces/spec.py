"""SmartSpaces described once: what the shared pipeline builds from (embeddings, index, checks, cutover, slices)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PIL import Image

from dlk_assets.defs.pipeline.hits import RANK, SCORE, HitColumn, value_column
from dlk_assets.defs.pipeline.spec import (
    Embedder,
    Lineage,
    SearchSpec,
    SliceExport,
    SourceSpec,
)
from dlk_assets.defs.smartspaces.assets import video_chunks, video_files
from dlk_assets.defs.smartspaces.embedding import (
    chunk_columns,
    chunk_settings,
    embed_chunks,
    frame_labels_preview,
)
from dlk_assets.defs.smartspaces.partitions import smartspaces_videos
from dlk_assets.defs.smartspaces.rows import video_row_key
from dlk_assets.defs.smartspaces.sensors import (
    VIDEO_JOB,
    register_all_videos,
    smartspaces_video_sensor,
)
from dlk_assets.defs.smartspaces.tables import VIDEO_CHUNKS, VIDEO_FILES
from dlk_assets.lake.files import FileStore
from dlk_assets.media.frames import sample_frames
from dlk_assets.retrieval.filters import BoolOp, Comparison, Filter
from dlk_assets.retrieval.text_search import maxsim_text_search
from dlk_assets.sources.smartspaces import parse_video_id


def frame_labels(hit) -> str:
    """The distinct labels the chunk's frames were given, most confident first."""
    best: dict[str, float] = {}
    for frame in hit.values.get("frames", {}).get("frames", []):
        for label in frame.get("labels", []):
            best[label["name"]] = max(best.get(label["name"], 0.0), label["probability"])
    return ", ".join(sorted(best, key=lambda name: -best[name])[:4])


def _middle_frame(store: FileStore, file_id: str) -> Image.Image:
    with tempfile.TemporaryDirectory(prefix="dlk-preview-") as work:
        return sample_frames(store.download(file_id, Path(work) / "clip.mp4"), 1)[0].image


def _chunks_of(item: str) -> Filter:
    """`<video_id>` (all its chunks), `<video_id>:<chunk>` or a chunk row key `video:<video_id>:<chunk>`."""
    video_id, _, chunk = item.removeprefix("video:").partition(":")
    parse_video_id(video_id)
    by_video = Comparison("video_id", "==", video_id)
    if not chunk:
        return by_video
    if not chunk.isdigit():
        raise ValueError(f"a video chunk is <video_id>:<chunk index>, got {item!r}")
    return BoolOp("AND", (by_video, Comparison("chunk_index", "==", int(chunk))))


VIDEOS = SourceSpec(
    name="videos", modality="image", group="smartspaces", asset_prefix="video", partitions=smartspaces_videos,
    ingest_assets=(video_files, video_chunks), ingest_job=VIDEO_JOB, sensors=(smartspaces_video_sensor,),
    register_all=lambda instance, resources: register_all_videos(instance, resources["smartspaces_source"]),
    rows_table=VIDEO_CHUNKS, derived_assets=(), equal_count_tables=(),
    embeddings_asset="video_chunk_embeddings",
    embeddings_description="A multi-vector per chunk: its sampled frames' vectors stacked into one bag, so MaxSim finds a "
                           "chunk by its best frame. Frames come from the chunk bytes read back by `file_id`. Says "
                           "`cached` when the chunks already have vectors from the same encoder and settings.",
    embeddings_table="smartspaces_chunk_embeddings",
    copied_columns=("video_id", "scene_name", "camera_id", "chunk_index", "start_s", "end_s", "file_id", "sha256"),
    embedder=Embedder(columns=chunk_columns, embed=embed_chunks, unit="chunks", batch_size=8,
                      settings_resource="smartspaces_source", settings=chunk_settings, preview=frame_labels_preview),
    indexes=(("embedding", "pooled_quantized"), ("scene_name", "exact_text")),
    search=SearchSpec(
        modes=("maxsim",), run=maxsim_text_search,
        select=("video_id", "scene_name", "camera_id", "chunk_index", "start_s", "end_s", "file_id", "sha256", "frames"),
        columns=(RANK, SCORE, value_column("video_id", width=28), value_column("chunk_index", "chunk", 5, True),
                 value_column("start_s", width=7, numeric=True), value_column("end_s", width=7, numeric=True), value_column("file_id", width=36),
                 HitColumn("labels", frame_labels)),
    ),
    lineage=Lineage(
        item_help="a video chunk: <video_id>:<chunk index> (e.g. scene_001__camera_0001:1), or a video_id for all its chunks",
        rows_for=_chunks_of, origin_table=VIDEO_FILES, origin_key=lambda row: video_row_key(row["video_id"]),
        describe_origin=lambda row: {"dataset": row["source"], "video": row["partition"], "path": row["repo_path"],
                                     "duration_s": row["duration_s"]},
        item_of=lambda hit: f"{hit['video_id']}:{hit['chunk_index']}",
    ),
    slices=SliceExport(
        item_fields=("video_id", "scene_name", "camera_id", "chunk_index", "start_s", "end_s"),
        item_name=lambda item: f"{item['video_id']}_chunk{item['chunk_index']:05d}", preview=_middle_frame,
    ),
    presence_tables=(VIDEO_FILES,),
)
