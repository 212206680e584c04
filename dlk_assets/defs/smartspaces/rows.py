"""Pure row builders for the SmartSpaces tables (no Dagster, no storage)."""

from __future__ import annotations

from typing import Any

from dlk_assets.lake.files import StoredFile
from dlk_assets.lake.schema import DAGSTER_RUN_ID
from dlk_assets.media.chunking import VideoChunk
from dlk_assets.media.ffmpeg import VideoProbe
from dlk_assets.sources.smartspaces import VideoRef


def video_row_key(video_id: str) -> str:
    return f"video:{video_id}"


def chunk_row_key(video_id: str, chunk_index: int) -> str:
    """Deterministic key of a chunk across the chunk and embedding tables."""
    return f"video:{video_id}:{chunk_index:05d}"


def video_file_row(video: VideoRef, stored: StoredFile, probe: VideoProbe, source: str, dagster_run_id: str) -> dict[str, Any]:
    """The `smartspaces_video_files` row for a video whose bytes are in the file store."""
    return {
        "row_key": video_row_key(video.video_id), "video_id": video.video_id, "scene_name": video.scene_name,
        "camera_id": video.camera_id, "repo_path": video.repo_path, "file_id": stored.file_id,
        "sha256": stored.sha256, "size": stored.size, "duration_s": probe.duration_s, "fps": probe.fps,
        "width": probe.width, "height": probe.height, "codec": probe.codec, "source": source, DAGSTER_RUN_ID: dagster_run_id,
    }


def chunk_row(video: dict[str, Any], chunk: VideoChunk, stored: StoredFile, chunk_duration_s: float, dagster_run_id: str) -> dict[str, Any]:
    """The `smartspaces_video_chunks` row for one stream-copied chunk."""
    return {
        "row_key": chunk_row_key(video["video_id"], chunk.index), "video_id": video["video_id"],
        "scene_name": video["scene_name"], "camera_id": video["camera_id"], "chunk_index": chunk.index,
        "start_s": chunk.start_s, "end_s": chunk.end_s, "file_id": stored.file_id, "sha256": stored.sha256,
        "metadata": {
            "bytes": stored.size, "codec": chunk.probe.codec, "fps": chunk.probe.fps,
            "width": chunk.probe.width, "height": chunk.probe.height, "duration_s": chunk.duration_s,
            "chunk_duration_setting_s": chunk_duration_s, "video_file_id": video["file_id"],
        },
        "source": video["source"], DAGSTER_RUN_ID: dagster_run_id,
    }
