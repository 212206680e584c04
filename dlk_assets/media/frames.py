"""Sample frames from a video file as RGB images (ffmpeg decodes, numpy receives raw pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dlk_assets.media.ffmpeg import VideoProbe, probe_video, run_ffmpeg


@dataclass(frozen=True)
class SampledFrame:
    """A decoded frame and its time, in seconds from the start of the file it came from."""

    offset_s: float
    image: Image.Image


def frame_indices(frame_count: int, wanted: int) -> list[int]:
    """`wanted` evenly spread frame numbers (centres of equal stretches), fewer if the clip is short."""
    if frame_count < 1 or wanted < 1:
        return []
    wanted = min(wanted, frame_count)
    return sorted({min(frame_count - 1, int((i + 0.5) * frame_count / wanted)) for i in range(wanted)})


def sample_frames(video: Path, wanted: int, probe: VideoProbe | None = None) -> list[SampledFrame]:
    """Decode `wanted` evenly spaced frames of `video` in one ffmpeg pass."""
    probe = probe or probe_video(video)
    frame_count = max(1, round(probe.duration_s * probe.fps)) if probe.fps else 1
    indices = frame_indices(frame_count, wanted)
    selector = "+".join(f"eq(n\\,{i})" for i in indices)
    result = run_ffmpeg(["-i", str(video), "-map", "0:v:0", "-vf", f"select={selector}", "-fps_mode", "passthrough",
                         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], f"sampling frames of {video.name}")
    frame_bytes = probe.width * probe.height * 3
    raw = np.frombuffer(result.stdout, dtype=np.uint8)
    decoded = len(raw) // frame_bytes
    if decoded == 0:
        raise ValueError(f"{video}: no frame could be decoded")
    pixels = raw[:decoded * frame_bytes].reshape(decoded, probe.height, probe.width, 3)
    fps = probe.fps or 1.0
    return [SampledFrame(round(index / fps, 3), Image.fromarray(pixels[i].copy())) for i, index in enumerate(indices[:decoded])]
