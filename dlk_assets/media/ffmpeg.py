"""Run ffmpeg (the imageio-ffmpeg binary) and read what a media file really holds.

There is no ffprobe in imageio-ffmpeg, so probing reads ffmpeg's own stream report, after a full
demux of the file (`-f null`), so a truncated file is caught here rather than at training time.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?), start: (-?\d+(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"([\d.]+) (?:fps|tbr)")
_ERROR_TAIL_LINES = 12


class FfmpegError(RuntimeError):
    """ffmpeg failed; the message carries ffmpeg's own error text."""


class NotAVideoError(ValueError):
    """A file that is empty, truncated or has no video stream."""


@dataclass(frozen=True)
class VideoProbe:
    """What a video file holds, read from the file itself."""

    duration_s: float
    start_s: float
    fps: float
    width: int
    height: int
    codec: str


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped with imageio-ffmpeg (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def error_tail(stderr: str) -> str:
    """The last lines of ffmpeg's log, where it says what went wrong."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines[-_ERROR_TAIL_LINES:])


def run_ffmpeg(args: list[str], what: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg with `args`; on failure raise `FfmpegError` naming `what` with ffmpeg's error text."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args] if stdin is None else [ffmpeg_exe(), "-hide_banner", *args]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise FfmpegError(f"ffmpeg failed on {what} (exit {result.returncode}):\n{error_tail(result.stderr.decode(errors='replace'))}")
    return result


def parse_probe(report: str, what: str) -> VideoProbe:
    """Read duration, start, fps, size and codec from ffmpeg's stream report."""
    duration = _DURATION.search(report)
    stream = _VIDEO_STREAM.search(report)
    if not stream:
        raise NotAVideoError(f"{what}: no video stream found")
    if not duration:
        raise NotAVideoError(f"{what}: ffmpeg reports no duration (is the file complete?)")
    hours, minutes, seconds, start = duration.groups()
    stream_line = report[stream.start():report.find("\n", stream.start())]
    fps = _FPS.search(stream_line)
    return VideoProbe(
        duration_s=round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 3),
        start_s=float(start),
        fps=float(fps.group(1)) if fps else 0.0,
        width=int(stream.group(2)),
        height=int(stream.group(3)),
        codec=stream.group(1),
    )


def probe_video(path: str | Path) -> VideoProbe:
    """Probe `path`, demuxing every packet so that truncation and corruption are reported.

    Raises `NotAVideoError` for empty, truncated or non-video files, with ffmpeg's reason.
    """
    path = Path(path)
    if not path.is_file():
        raise NotAVideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise NotAVideoError(f"{path}: the file is empty (0 bytes)")
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "info", "-xerror", "-err_detect", "explode",
               "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    report = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise NotAVideoError(f"{path}: not a readable video:\n{error_tail(report)}")
    return parse_probe(report, str(path))
