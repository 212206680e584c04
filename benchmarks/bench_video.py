"""Video throughput, measured against a baseline in the same run.

1. Chunking: seconds of video cut per wall-clock second with the project's stream-copy chunker
   (`split_stream_copy`) vs a re-encode baseline (the same segment muxer with libx264), on the
   same generated 720p H.264 video.
2. Frame embedding: frames per second sampled (ffmpeg decode), encoded (EfficientNet-Lite0 +
   MiniLM labels; CPU by default, `--device cuda` on a GPU machine), and both together, on the
   stream-copied chunks of the same video. The encoder is warmed up first.

Usage: python benchmarks/bench_video.py [--seconds 60] [--device auto] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from dlk_assets.encoders.clips import encode_clips
from dlk_assets.media.chunking import split_stream_copy
from dlk_assets.media.ffmpeg import probe_video, run_ffmpeg
from dlk_assets.media.frames import sample_frames
from dlk_assets.models.catalog import build_encoder

CHUNK_S = 10.0


def make_video(path: Path, seconds: int) -> None:
    """A 1280x720 30 fps H.264 test pattern with a keyframe every 2 s (like a camera's GOP)."""
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", str(path)], "making the benchmark video")


def reencode_split(video: Path, out_dir: Path, chunk_s: float) -> None:
    """The baseline: the same cut, but decoding and re-encoding every frame."""
    out_dir.mkdir()
    run_ffmpeg(["-y", "-i", str(video), "-map", "0:v:0", "-c:v", "libx264", "-preset", "veryfast",
                "-force_key_frames", f"expr:gte(t,n_forced*{chunk_s})", "-f", "segment", "-segment_time", f"{chunk_s:g}",
                str(out_dir / "chunk_%05d.mp4")], "re-encoding")


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--encoder", default="efficientnet-lite0", help="efficientnet-lite0, efficientnet-lite2 or colqwen3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames-per-chunk", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        video = work / "video.mp4"
        make_video(video, args.seconds)
        duration = probe_video(video).duration_s
        copy_times, encode_times = [], []
        for round_ in range(args.rounds):
            copy_times.append(timed(lambda r=round_: split_stream_copy(video, work / f"copy{r}", CHUNK_S)))
            encode_times.append(timed(lambda r=round_: reencode_split(video, work / f"encode{r}", CHUNK_S)))
        copy_speed = duration / statistics.median(copy_times)
        encode_speed = duration / statistics.median(encode_times)

        chunks = split_stream_copy(video, work / "frames", CHUNK_S)
        encoder = build_encoder(args.encoder, args.device)
        starts = [c.start_s for c in chunks]
        warm = [sample_frames(c.path, args.frames_per_chunk, c.probe) for c in chunks]
        encode_clips(encoder, warm, starts)
        sample_times, embed_times = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            clips = [sample_frames(c.path, args.frames_per_chunk, c.probe) for c in chunks]
            sampled = time.perf_counter()
            encode_clips(encoder, clips, starts)
            sample_times.append(sampled - started)
            embed_times.append(time.perf_counter() - sampled)
        frames = sum(len(c) for c in clips)
    result = {
        "video_seconds": duration, "chunk_s": CHUNK_S, "chunks": len(chunks),
        "stream_copy_video_s_per_s": round(copy_speed, 1), "reencode_video_s_per_s": round(encode_speed, 2),
        "stream_copy_speedup_vs_reencode": round(copy_speed / encode_speed, 1),
        "frames": frames, "encoder": encoder.fingerprint, "device": getattr(encoder, "device", "n/a"),
        "frames_per_s_sampling": round(frames / statistics.median(sample_times), 1),
        "frames_per_s_encoding": round(frames / statistics.median(embed_times), 1),
        "frames_per_s_sampling_and_encoding": round(frames / (statistics.median(sample_times) + statistics.median(embed_times)), 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
