"""A generated SmartSpaces-shaped sample: short H.264 MP4s made with ffmpeg from real photos.

Each video is a sequence of segments; each segment pans and zooms slowly over one `skimage.data`
photo, so consecutive chunks show visibly different things. Files are laid out like the real
repository (`MTMC_Tracking_2024/train/scene_*/camera_*/video.mp4`) and generated once, the same
way every time (fixed frames, single-threaded x264, bit-exact flags).

Rebuild by hand: `python -m dlk_assets.sources.smartspaces_sample <folder>`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dlk_assets.media.ffmpeg import run_ffmpeg

WIDTH, HEIGHT, FPS = 320, 240, 10
SEGMENT_SECONDS = 4
KEYFRAME_EVERY_S = 2  # a GOP of 2 s: stream-copy cuts can only land on these
SAMPLE_BASE = "MTMC_Tracking_2024/train"


@dataclass(frozen=True)
class Segment:
    """One stretch of a sample video: the photo it shows and the words that describe it."""

    photo: str
    subject: str
    # Whether the offline EfficientNet-Lite0 labels recognise the subject; the astronaut reads as
    # "bobsled/football helmet" and the Hubble field as "nematode/bubble", so text search cannot find them.
    recognised: bool = True


# Subjects are what a person would type to find the segment (tests search for them).
SAMPLE_VIDEOS: dict[tuple[str, str], tuple[Segment, ...]] = {
    ("scene_001", "camera_0001"): (
        Segment("chelsea", "a cat"),
        Segment("coffee", "a cup of coffee"),
        Segment("stereo_motorcycle", "a motor scooter"),
    ),
    ("scene_001", "camera_0002"): (
        Segment("camera", "a camera on a tripod"),
        Segment("rocket", "a rocket on a launch platform"),
    ),
    ("scene_002", "camera_0001"): (
        Segment("astronaut", "an astronaut in a space suit", recognised=False),
        Segment("hubble_deep_field", "galaxies in deep space", recognised=False),
        Segment("clock", "a wall clock"),
    ),
}


def _photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs come as (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3].astype(np.uint8)


def _segment_frames(photo: np.ndarray, segment_index: int) -> np.ndarray:
    """A slow pan-and-zoom over the photo: (frames, HEIGHT, WIDTH, 3) uint8."""
    source = Image.fromarray(photo)
    # Scale so the photo covers the frame with room to move.
    cover = max(WIDTH / source.width, HEIGHT / source.height) * 1.25
    base = source.resize((round(source.width * cover), round(source.height * cover)), Image.Resampling.BICUBIC)
    count = SEGMENT_SECONDS * FPS
    frames = np.empty((count, HEIGHT, WIDTH, 3), dtype=np.uint8)
    direction = 1 if segment_index % 2 == 0 else -1
    for i in range(count):
        t = i / max(count - 1, 1)
        zoom = 1.0 + 0.15 * t  # zoom in by 15% over the segment
        crop_w, crop_h = base.width / 1.25 / zoom, base.height / 1.25 / zoom
        crop_w, crop_h = min(crop_w, base.width), min(crop_h, base.height)
        spare_x, spare_y = base.width - crop_w, base.height - crop_h
        x = spare_x * (0.5 + direction * (t - 0.5) * 0.8)
        y = spare_y * 0.5
        window = base.crop((x, y, x + crop_w, y + crop_h)).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
        frames[i] = np.asarray(window)
    return frames


def encode_video(frames: np.ndarray, out_path: Path, fps: int = FPS, keyframe_every_s: int = KEYFRAME_EVERY_S) -> None:
    """Encode raw RGB frames to an H.264 MP4 with a fixed keyframe interval, deterministically."""
    _, height, width, _ = frames.shape
    gop = fps * keyframe_every_s
    run_ffmpeg([
        "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-threads", "1",
        "-movflags", "+faststart", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
        str(out_path),
    ], f"encoding {out_path.name}", stdin=frames.tobytes())


def sample_video_path(root: Path, scene: str, camera: str) -> Path:
    return root / SAMPLE_BASE / scene / camera / "video.mp4"


def write_sample_videos(root: str | Path) -> list[Path]:
    """Generate every sample video under `root` that is not there yet; returns all their paths."""
    root = Path(root)
    paths = []
    for (scene, camera), segments in SAMPLE_VIDEOS.items():
        path = sample_video_path(root, scene, camera)
        paths.append(path)
        if path.is_file() and path.stat().st_size:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = np.concatenate([_segment_frames(_photo(s.photo), i) for i, s in enumerate(segments)])
        # Write beside the target and rename, so a killed run never leaves a half video behind.
        handle, staging = tempfile.mkstemp(dir=path.parent, suffix=".mp4")
        os.close(handle)
        try:
            encode_video(frames, Path(staging))
            os.chmod(staging, 0o644)
            os.replace(staging, path)
        finally:
            Path(staging).unlink(missing_ok=True)
    return paths


def segment_at(scene: str, camera: str, seconds: float) -> Segment:
    """The sample segment showing at `seconds` into a sample video."""
    segments = SAMPLE_VIDEOS[(scene, camera)]
    return segments[min(int(seconds // SEGMENT_SECONDS), len(segments) - 1)]


if __name__ == "__main__":
    for written in write_sample_videos(sys.argv[1] if len(sys.argv) > 1 else "smartspaces-sample"):
        print(written)
