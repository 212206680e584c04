"""SmartSpaces assets: the original videos, stream-copied chunks, frame-bag embeddings, the index."""


import tempfile
import time
from pathlib import Path

import dagster as dg

from dlk_assets.defs.gpu import GPU_OP_TAGS, GPU_POOL
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.smartspaces.partitions import smartspaces_videos
from dlk_assets.defs.smartspaces.rows import (
    chunk_embedding_row,
    chunk_row,
    video_file_row,
)
from dlk_assets.defs.smartspaces.search import clip_hits_markdown, video_text_search
from dlk_assets.defs.smartspaces.tables import (
    VIDEO_CHUNKS,
    VIDEO_FILES,
    chunk_embeddings_schema,
)
from dlk_assets.encoders.clips import encode_clips
from dlk_assets.lake.files import FileStore
from dlk_assets.media.chunking import split_stream_copy
from dlk_assets.media.ffmpeg import FfmpegError, NotAVideoError, probe_video
from dlk_assets.media.frames import sample_frames
from dlk_assets.media.images import contact_sheet_data_uri
from dlk_assets.profile import configured_encoder_fingerprint, current_profile
from dlk_assets.resources import (
    FileStoreResource,
    ImageEncoderResource,
    LakeResource,
    SmartSpacesSourceResource,
)
from dlk_assets.retrieval.requests import VectorSearch

INDEX_PREVIEW_QUERY = "a cat"


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
    code_version="1",
)
def video_files(context: dg.AssetExecutionContext, smartspaces_source: SmartSpacesSourceResource, lake: LakeResource,
                files: FileStoreResource) -> dg.MaterializeResult:
    """The original video in the file store, probed (duration, fps, resolution, codec) from its own bytes."""
    video_id = context.partition_key
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
    row = video_file_row(video, stored, probe, source.label, context.run_id)
    write = lake.lake().table(VIDEO_FILES).replace_partition(video_id, [row], f"video_files {video_id} run {context.run_id}")
    return dg.MaterializeResult(metadata={
        "file_id": stored.file_id, "bytes": stored.size, "duration_s": probe.duration_s, "fps": probe.fps,
        "resolution": f"{probe.width}x{probe.height}", "codec": probe.codec, "source": source.label,
        "table_version": write.version,
    })


def _chunk_sheet(chunk_paths: list[Path]) -> str:
    middles = [sample_frames(path, 1)[0].image for path in chunk_paths]
    return f"![chunks]({contact_sheet_data_uri(middles)})"


@dg.asset(
    partitions_def=smartspaces_videos,
    deps=[video_files],
    group_name="smartspaces",
    kinds={"deeplake", "ffmpeg"},
    # The chunk length changes the rows, so it is part of the code version (a change marks chunks stale).
    code_version=f"1-chunk{current_profile().chunk_duration_s:g}s",
)
def video_chunks(context: dg.AssetExecutionContext, smartspaces_source: SmartSpacesSourceResource, lake: LakeResource,
                 files: FileStoreResource) -> dg.MaterializeResult:
    """The video cut by ffmpeg stream copy (no re-encode) into chunks of about `chunk_duration_s`, each chunk
    in the file store; start/end seconds are read from the chunk files (cuts land on keyframes)."""
    video_id = context.partition_key
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
            rows.append(chunk_row(video, chunk, stored, duration_setting, context.run_id))
            total_bytes += stored.size
        context.log.info(f"{video_id}: {len(chunks)} chunk(s) by stream copy in {time.perf_counter() - started:.2f} s")
        sheet = _chunk_sheet([c.path for c in chunks])
    write = tables.table(VIDEO_CHUNKS).replace_partition(video_id, rows, f"video_chunks {video_id} run {context.run_id}")
    return dg.MaterializeResult(metadata={
        "chunks": len(rows), "total_seconds": round(sum(r["end_s"] - r["start_s"] for r in rows), 3),
        "bytes": total_bytes, "chunk_duration_setting_s": duration_setting, "rows_replaced": write.rows_replaced,
        "table_version": write.version, "seconds": round(time.perf_counter() - started, 3),
        "chunk_table": dg.MetadataValue.md(markdown_table(("chunk", "start_s", "end_s", "bytes", "file_id"), [
            (r["chunk_index"], r["start_s"], r["end_s"], r["metadata"]["bytes"], r["file_id"]) for r in rows])),
        "contact_sheet": dg.MetadataValue.md(sheet),
    })


def _sample_chunk_frames(store: FileStore, chunks: list[dict], frames_per_chunk: int, work: Path) -> list:
    sampled = []
    for chunk in chunks:
        path = store.download(chunk["file_id"], work / f"{chunk['chunk_index']:05d}.mp4")
        sampled.append(sample_frames(path, frames_per_chunk))
    return sampled


@dg.asset(
    partitions_def=smartspaces_videos,
    deps=[video_chunks],
    group_name="smartspaces",
    kinds={"deeplake", "pytorch"},
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    code_version=configured_encoder_fingerprint(),
)
def video_chunk_embeddings(context: dg.AssetExecutionContext, smartspaces_source: SmartSpacesSourceResource,
                           lake: LakeResource, files: FileStoreResource, image_encoder: ImageEncoderResource) -> dg.MaterializeResult:
    """A multi-vector per chunk: the sampled frames' vectors stacked into one bag, so MaxSim finds a chunk by
    its best frame. Frames come from the chunk bytes read back by `file_id`. Says `cached` when current."""
    video_id = context.partition_key
    encoder = image_encoder.encoder()
    frames_per_chunk = smartspaces_source.frames_per_chunk
    tables = lake.lake()
    chunks = tables.table(VIDEO_CHUNKS).read_partition(video_id)
    table = tables.table(chunk_embeddings_schema(encoder))
    existing = table.read_partition(video_id, ("sha256", "model", "frames_per_chunk"))
    wanted = {(c["row_key"], c["sha256"], encoder.fingerprint, frames_per_chunk) for c in chunks}
    if chunks and wanted == {(r["row_key"], r["sha256"], r["model"], r["frames_per_chunk"]) for r in existing}:
        context.log.info(f"{video_id}: {len(chunks)} chunk embeddings already current for {encoder.fingerprint}")
        return dg.MaterializeResult(metadata={"cached": True, "rows": len(chunks), "model": encoder.fingerprint, "table": table.schema.name})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlk-frames-") as work:
        try:
            clips = _sample_chunk_frames(files.store(), chunks, frames_per_chunk, Path(work))
        except (FfmpegError, NotAVideoError, ValueError) as exc:
            raise _fail(video_id, "frame sampling", exc) from exc
    frame_count = sum(len(c) for c in clips)
    context.log.info(f"{video_id}: encoding {frame_count} frames from {len(chunks)} chunk(s) with {encoder.fingerprint}")
    encode_started = time.perf_counter()
    embeddings = encode_clips(encoder, clips, [c["start_s"] for c in chunks]) if chunks else []
    encode_seconds = time.perf_counter() - encode_started
    rows = [chunk_embedding_row(chunk, e.vectors, encoder.fingerprint, frames_per_chunk, e.frames, context.run_id)
            for chunk, e in zip(chunks, embeddings)]
    write = table.replace_partition(video_id, rows, f"chunk embeddings {video_id} {encoder.fingerprint} run {context.run_id}")
    return dg.MaterializeResult(metadata={
        "cached": False, "rows": len(rows), "frames": frame_count, "model": encoder.fingerprint, "dim": encoder.dim,
        "device": getattr(encoder, "device", "n/a"), "table": table.schema.name, "table_version": write.version,
        "encode_seconds": round(encode_seconds, 3), "seconds": round(time.perf_counter() - started, 3),
        "frames_per_second": round(frame_count / encode_seconds, 2) if encode_seconds and frame_count else 0.0,
        "frame_labels": dg.MetadataValue.md(markdown_table(("chunk", "time_s", "labels"), [
            (r["chunk_index"], f["time_s"], ", ".join(label["name"] for label in f["labels"]))
            for r in rows for f in r["frames"]["frames"]])),
    })


@dg.asset(
    deps=[video_chunk_embeddings],
    group_name="smartspaces",
    kinds={"deeplake"},
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
)
def video_index(context: dg.AssetExecutionContext, lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.MaterializeResult:
    """A pooled_quantized (MaxSim) index on the chunk multi-vectors and an exact_text index on `scene_name`,
    with the query plan and a preview clip search in the metadata."""
    encoder = image_encoder.encoder()
    table = lake.lake().table(chunk_embeddings_schema(encoder))
    created = {"embedding": table.create_index("embedding", "pooled_quantized"),
               "scene_name": table.create_index("scene_name", "exact_text")}
    probe = VectorSearch("embedding", encoder.encode_texts([INDEX_PREVIEW_QUERY])[0], "maxsim", 5)
    plan = table.explain(probe)
    hits = video_text_search(table, encoder, INDEX_PREVIEW_QUERY, k=5)
    context.log.info(f"indexes on {table.schema.name}: {table.indexes()}; plan: {plan.splitlines()[0]}")
    return dg.MaterializeResult(metadata={
        "table": table.schema.name, "rows": len(table), "videos": len(table.partition_counts()),
        "indexes": dg.MetadataValue.json(table.indexes()), "created_now": dg.MetadataValue.json(created),
        "table_version": table.version, "model": encoder.fingerprint, "query_plan": dg.MetadataValue.md(f"```\n{plan}\n```"),
        f"top_hits_{INDEX_PREVIEW_QUERY.replace(' ', '_')}": dg.MetadataValue.md(clip_hits_markdown(hits)),
    })


smartspaces_video_job = dg.define_asset_job(
    "smartspaces_video_job",
    selection=dg.AssetSelection.assets(video_files, video_chunks, video_chunk_embeddings),
    partitions_def=smartspaces_videos,
    description="Ingest one SmartSpaces video: the file, its stream-copied chunks and their embeddings.",
)
