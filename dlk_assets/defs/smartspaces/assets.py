"""SmartSpaces ingest assets: the original videos and their stream-copied chunks (embeddings follow from `spec`)."""

import tempfile
import time
from pathlib import Path

import dagster as dg

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.pipeline.run_context import dagster_run_id
from dlk_assets.defs.pipeline.table_metadata import definition_metadata, table_metadata
from dlk_assets.defs.pipeline.versions import rows_version
from dlk_assets.defs.smartspaces.partitions import smartspaces_videos
from dlk_assets.defs.smartspaces.rows import chunk_row, video_file_row
from dlk_assets.defs.smartspaces.tables import VIDEO_CHUNKS, VIDEO_FILES
from dlk_assets.media.chunking import split_stream_copy
from dlk_assets.media.ffmpeg import FfmpegError, NotAVideoError, probe_video
from dlk_assets.media.frames import sample_frames
from dlk_assets.media.images import contact_sheet_data_uri
from dlk_assets.profile import current_profile
from dlk_assets.resources import (
    FileStoreResource,
    LakeResource,
    SmartSpacesSourceResource,
)


def _fail(video_id: str, step: str, error: Exception) -> dg.Failure:
    # The description is what the UI shows for the failed partition: keep ffmpeg's own words.
    return dg.Failure(description=f"{video_id}: {step} failed: {error}", metadata={"video_id": video_id, "step": step})


def _one_row(table_rows: list[dict], video_id: str, table: str) -> dict:
    if len(table_rows) != 1:
        raise dg.Failure(description=f"{video_id}: expected one row in {table}, found {len(table_rows)}; materialize video_files first")
    return table_rows[0]


@dg.asset(
    partitions_def=smartspaces_videos,
    group_name="smartspaces",
    kinds={"deeplake", "huggingface", "ffmpeg"},
    code_version="2",
    metadata=definition_metadata(VIDEO_FILES),
)
def video_files(context: dg.AssetExecutionContext, smartspaces_source: SmartSpacesSourceResource, lake: LakeResource,
                files: FileStoreResource) -> dg.MaterializeResult:
    """The original video in the file store, probed (duration, fps, resolution, codec) from its own bytes.
    Its data version is the video's content, so only changed bytes mark the chunks stale."""
    video_id = context.partition_key
    run_id = dagster_run_id(context)
    source = smartspaces_source.source()
    try:
        video = source.find(video_id)
        path = source.fetch(video)
    except Exception as exc:  # a download can fail in many ways; the partition fails with the reason
        raise _fail(video_id, "download", exc) from exc
    try:
        probe = probe_video(path)
    except NotAVideoError as exc:
        raise _fail(video_id, "probe", exc) from exc
    context.log.info(f"{video_id}: {probe.duration_s:.1f} s {probe.codec} {probe.width}x{probe.height} @ {probe.fps:g} fps")
    stored = files.store().put_file(path, f"{video_id}.mp4", "video/mp4")
    row = video_file_row(video, stored, probe, source.label, run_id)
    table = lake.lake().table(VIDEO_FILES)
    table.replace_partition(video_id, [row], f"video_files {video_id} run {run_id}")
    return dg.MaterializeResult(metadata={
        **table_metadata(table, 1), "file_id": stored.file_id, "bytes": stored.size, "duration_s": probe.duration_s,
        "fps": probe.fps, "resolution": f"{probe.width}x{probe.height}", "codec": probe.codec, "source": source.label,
    }, data_version=rows_version([row]))


def _chunk_sheet(chunk_paths: list[Path]) -> str:
    middles = [sample_frames(path, 1)[0].image for path in chunk_paths]
    return f"![chunks]({contact_sheet_data_uri(middles)})"


@dg.asset(
    partitions_def=smartspaces_videos,
    deps=[video_files],
    group_name="smartspaces",
    kinds={"deeplake", "ffmpeg"},
    # The chunk length changes the rows, so it is part of the code version (a change marks chunks stale).
    code_version=f"2-chunk{current_profile().chunk_duration_s:g}s",
    metadata=definition_metadata(VIDEO_CHUNKS),
)
def video_chunks(context: dg.AssetExecutionContext, smartspaces_source: SmartSpacesSourceResource, lake: LakeResource,
                 files: FileStoreResource) -> dg.MaterializeResult:
    """The video cut by ffmpeg stream copy (no re-encode) into chunks of about `chunk_duration_s`, each chunk
    in the file store; start/end seconds are read from the chunk files (cuts land on keyframes)."""
    video_id = context.partition_key
    run_id = dagster_run_id(context)
    tables = lake.lake()
    store = files.store()
    video = _one_row(tables.table(VIDEO_FILES).read_partition(video_id), video_id, VIDEO_FILES.name)
    duration_setting = smartspaces_source.chunk_duration_s
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlk-chunks-") as work:
        original = store.download(video["file_id"], Path(work) / "video.mp4")
        try:
            chunks = split_stream_copy(original, Path(work) / "chunks", duration_setting)
        except (FfmpegError, NotAVideoError) as exc:
            raise _fail(video_id, "chunking", exc) from exc
        rows, total_bytes = [], 0
        for chunk in chunks:
            stored = store.put_file(chunk.path, f"{video_id}_chunk{chunk.index:05d}.mp4", "video/mp4")
            rows.append(chunk_row(video, chunk, stored, duration_setting, run_id))
            total_bytes += stored.size
        context.log.info(f"{video_id}: {len(chunks)} chunk(s) by stream copy in {time.perf_counter() - started:.2f} s")
        sheet = _chunk_sheet([c.path for c in chunks])
    table = tables.table(VIDEO_CHUNKS)
    write = table.replace_partition(video_id, rows, f"video_chunks {video_id} run {run_id}")
    return dg.MaterializeResult(metadata={
        **table_metadata(table, len(rows)), "chunks": len(rows),
        "total_seconds": round(sum(r["end_s"] - r["start_s"] for r in rows), 3), "bytes": total_bytes,
        "chunk_duration_setting_s": duration_setting, "rows_replaced": write.rows_replaced,
        "seconds": round(time.perf_counter() - started, 3),
        "chunk_table": dg.MetadataValue.md(markdown_table(("chunk", "start_s", "end_s", "bytes", "file_id"), [
            (r["chunk_index"], r["start_s"], r["end_s"], r["metadata"]["bytes"], r["file_id"]) for r in rows])),
        "contact_sheet": dg.MetadataValue.md(sheet),
    }, data_version=rows_version(rows))
