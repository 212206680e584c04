"""ffmpeg probing, stream-copy chunking and frame sampling on real MP4s made with real ffmpeg."""

import hashlib

import numpy as np
import pytest

from dlk_assets.media.chunking import split_stream_copy
from dlk_assets.media.ffmpeg import (
    FfmpegError,
    NotAVideoError,
    parse_probe,
    probe_video,
    run_ffmpeg,
)
from dlk_assets.media.frames import frame_indices, sample_frames
from dlk_assets.media.images import contact_sheet_data_uri
from dlk_assets.sources.smartspaces_sample import encode_video, write_sample_videos


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("smartspaces")
    write_sample_videos(root)
    return root


@pytest.fixture(scope="module")
def video(sample_root):
    # scene_001/camera_0001: cat 0-4 s, coffee 4-8 s, scooter 8-12 s; keyframes every 2 s
    return sample_root / "MTMC_Tracking_2024/train/scene_001/camera_0001/video.mp4"


def test_probe_reads_duration_fps_size_and_codec(video):
    probe = probe_video(video)
    assert (probe.duration_s, probe.fps, probe.width, probe.height, probe.codec) == (12.0, 10.0, 320, 240, "h264")


def test_probe_parses_ffmpeg_stream_reports():
    report = ("Input #0, mov,mp4, from 'x.mp4':\n  Duration: 01:02:03.50, start: 0.066000, bitrate: 900 kb/s\n"
              "  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv), 1920x1080, 800 kb/s, 29.97 fps, 29.97 tbr\n")
    probe = parse_probe(report, "x.mp4")
    assert (probe.duration_s, probe.start_s, probe.fps, probe.width, probe.height, probe.codec) == (3723.5, 0.066, 29.97, 1920, 1080, "hevc")
    with pytest.raises(NotAVideoError, match="no video stream"):
        parse_probe("  Duration: 00:00:01.00, start: 0.000000\n  Stream #0:0: Audio: aac, 44100 Hz", "a.m4a")


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"this is a text file, not a video\n" * 20, "not a readable video"),
])
def test_probe_rejects_empty_and_non_video_files(tmp_path, content, reason):
    path = tmp_path / "video.mp4"
    path.write_bytes(content)
    with pytest.raises(NotAVideoError, match=reason):
        probe_video(path)


def test_probe_rejects_a_truncated_video(tmp_path, video):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(NotAVideoError, match=str(cut.name)):
        probe_video(cut)


def test_chunks_start_on_keyframes_not_on_multiples_of_the_chunk_length(tmp_path, video):
    chunks = split_stream_copy(video, tmp_path / "chunks", 3.0)
    # Keyframes sit every 2 s: cuts asked for at 3, 6, 9 land on 4, 6 and 10.
    assert [(c.start_s, c.end_s) for c in chunks] == [(0.0, 4.0), (4.0, 6.0), (6.0, 10.0), (10.0, 12.0)]
    assert all(c.probe.codec == "h264" for c in chunks)
    assert sum(c.duration_s for c in chunks) == pytest.approx(probe_video(video).duration_s)


def test_stream_copy_keeps_every_frame_bit_for_bit(tmp_path, video):
    chunks = split_stream_copy(video, tmp_path / "chunks", 4.0)

    def frame_hashes(path):
        raw = run_ffmpeg(["-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"], "hashing").stdout.decode()
        return [line.rsplit(",", 1)[1].strip() for line in raw.splitlines() if line and not line.startswith("#")]

    assert [h for c in chunks for h in frame_hashes(c.path)] == frame_hashes(video)


def test_zero_keeps_the_video_whole_and_a_short_video_gives_one_chunk(tmp_path, video):
    whole = split_stream_copy(video, tmp_path / "whole", 0)
    longer = split_stream_copy(video, tmp_path / "longer", 20.0)
    assert [(c.start_s, c.end_s) for c in whole] == [(0.0, 12.0)] == [(c.start_s, c.end_s) for c in longer]


def test_chunking_is_deterministic(tmp_path, video):
    first = split_stream_copy(video, tmp_path / "a", 4.0)
    second = split_stream_copy(video, tmp_path / "b", 4.0)

    def digest(chunks):
        return [hashlib.sha256(c.path.read_bytes()).hexdigest() for c in chunks]

    assert digest(first) == digest(second)


def test_chunking_refuses_a_used_folder_and_a_negative_length(tmp_path, video):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.mp4").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        split_stream_copy(video, tmp_path / "used", 4.0)
    with pytest.raises(ValueError, match=">= 0"):
        split_stream_copy(video, tmp_path / "neg", -1)


def test_ffmpeg_errors_carry_ffmpegs_own_text(tmp_path):
    with pytest.raises(FfmpegError, match="No such file or directory"):
        run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"], "missing.mp4")


def test_frame_indices_are_spread_and_bounded():
    assert frame_indices(40, 3) == [6, 20, 33]
    assert frame_indices(2, 5) == [0, 1]
    assert frame_indices(0, 3) == [] and frame_indices(10, 0) == []


def test_sampled_frames_show_the_segment_they_come_from(tmp_path, sample_root):
    chunks = split_stream_copy(sample_root / "MTMC_Tracking_2024/train/scene_001/camera_0001/video.mp4", tmp_path / "c", 4.0)
    frames = sample_frames(chunks[1].path, 3)
    assert [f.offset_s for f in frames] == [0.6, 2.0, 3.3] and frames[0].image.size == (320, 240)
    # The coffee segment is dominated by the warm brown of the crema and the red saucer.
    red, green, blue = np.asarray(frames[1].image, dtype=float).reshape(-1, 3).mean(axis=0)
    assert red > green > blue


def test_encode_video_is_deterministic(tmp_path):
    frames = (np.arange(20 * 48 * 64 * 3) % 251).astype(np.uint8).reshape(20, 48, 64, 3)
    encode_video(frames, tmp_path / "a.mp4")
    encode_video(frames, tmp_path / "b.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert probe_video(tmp_path / "a.mp4").duration_s == 2.0


def test_contact_sheet_is_a_jpeg_data_uri(tmp_path, video):
    frames = sample_frames(video, 3)
    uri = contact_sheet_data_uri([f.image for f in frames], height=40)
    assert uri.startswith("data:image/jpeg;base64,")
    with pytest.raises(ValueError):
        contact_sheet_data_uri([])
