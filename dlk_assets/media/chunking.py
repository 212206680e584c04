"""Split a video into time chunks with ffmpeg stream copy (no re-encode).

Stream copy can only cut on keyframes, so a chunk is at least `chunk_duration_s` long and starts
on the first keyframe at or after each boundary. Chunk files keep the source's timestamps, so
each chunk's place in the source is read back from the chunk file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlk_assets.media.ffmpeg import VideoProbe, probe_video, run_ffmpeg

CHUNK_PATTERN = "chunk_%05d.mp4"


@dataclass(frozen=True)
class VideoChunk:
    """One chunk file and where it sits in the source video."""

    index: int
    path: Path
    start_s: float
    end_s: float
    probe: VideoProbe

    @property
    def duration_s(self) -> float:
        return round(self.end_s - self.start_s, 3)


def split_stream_copy(video: Path, out_dir: Path, chunk_duration_s: float, source: VideoProbe | None = None) -> list[VideoChunk]:
    """Cut `video` into chunks of about `chunk_duration_s` seconds in `out_dir` (must be empty).

    `chunk_duration_s == 0` keeps the video whole (one chunk). A video shorter than one chunk
    gives one chunk. Raises `FfmpegError` with ffmpeg's text when the cut fails.
    """
    if chunk_duration_s < 0:
        raise ValueError(f"chunk duration must be >= 0 seconds, got {chunk_duration_s}")
    source = source or probe_video(video)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; chunks go into a fresh folder")
    common = ["-y", "-i", str(video), "-map", "0:v:0", "-c", "copy"]
    if chunk_duration_s == 0:
        run_ffmpeg([*common, "-movflags", "+faststart", str(out_dir / (CHUNK_PATTERN % 0))], f"copying {video.name}")
    else:
        run_ffmpeg([*common, "-f", "segment", "-segment_time", f"{chunk_duration_s:g}",
                    str(out_dir / CHUNK_PATTERN)], f"chunking {video.name}")
    paths = sorted(out_dir.glob("chunk_*.mp4"))
    probes = [probe_video(path) for path in paths]
    # Chunk files carry the source timestamps plus the codec's start delay (B-frames); the first
    # chunk starts where the source starts, which gives that delay.
    delay = probes[0].start_s - source.start_s if probes else 0.0
    chunks = []
    for index, (path, probe) in enumerate(zip(paths, probes)):
        start = round(probe.start_s - delay, 3)
        chunks.append(VideoChunk(index, path, start, round(start + probe.duration_s, 3), probe))
    return chunks
