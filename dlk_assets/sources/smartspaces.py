"""SmartSpaces video sources: the Hugging Face repository, or a folder with the same layout.

Both list `<base>/scene_*/camera_*/video.mp4` and hand back a local file per video; the assets do
not know which one they read.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

DATASET_REPO = "nvidia/PhysicalAI-SmartSpaces"
DATASET_BASE = "MTMC_Tracking_2024/train"
VIDEO_FILENAME = "video.mp4"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class VideoRef:
    """One camera's video in one scene."""

    scene_name: str
    camera_id: str
    repo_path: str

    @property
    def video_id(self) -> str:
        """The partition key: `<scene>__<camera>`."""
        return f"{self.scene_name}__{self.camera_id}"


def parse_video_path(repo_path: str, base: str = DATASET_BASE) -> VideoRef | None:
    """A `VideoRef` for `<base>/scene_*/camera_*/video.mp4`, or None for any other path."""
    prefix = base.strip("/") + "/"
    if not repo_path.startswith(prefix):
        return None
    parts = repo_path[len(prefix):].split("/")
    if len(parts) != 3 or parts[2] != VIDEO_FILENAME:
        return None
    scene, camera = parts[0], parts[1]
    if not (scene.startswith("scene_") and camera.startswith("camera_") and _PART.match(scene) and _PART.match(camera)):
        return None
    if "__" in scene or "__" in camera:  # "__" separates scene and camera in the partition key
        return None
    return VideoRef(scene, camera, repo_path)


def parse_video_id(video_id: str) -> tuple[str, str]:
    """`(scene_name, camera_id)` from a partition key, with a clear error for a malformed one."""
    scene, sep, camera = video_id.partition("__")
    if not sep or not scene.startswith("scene_") or not camera.startswith("camera_"):
        raise ValueError(f"video id {video_id!r} is not '<scene_*>__<camera_*>'")
    return scene, camera


class VideoSource(ABC):
    """Lists the source's videos and fetches one to a local file."""

    label: str

    @abstractmethod
    def list_videos(self) -> list[VideoRef]:
        """Every video, sorted by video id (so a cursor over them is stable)."""

    @abstractmethod
    def fetch(self, video: VideoRef) -> Path:
        """A local path to the video's bytes (downloaded or cached as needed)."""

    def find(self, video_id: str) -> VideoRef:
        """The video with this id, or a `KeyError` saying the source does not have it."""
        scene, camera = parse_video_id(video_id)
        for video in self.list_videos():
            if video.scene_name == scene and video.camera_id == camera:
                return video
        raise KeyError(f"{self.label} has no video {video_id!r}")


class HubVideoSource(VideoSource):
    """`nvidia/PhysicalAI-SmartSpaces` on the Hugging Face Hub (listing via HfApi, bytes via hf_hub_download)."""

    def __init__(self, repo: str = DATASET_REPO, base: str = DATASET_BASE, revision: str | None = None):
        self.repo, self.base, self.revision = repo, base, revision
        self.label = f"hf://datasets/{repo}/{base}"

    def list_videos(self) -> list[VideoRef]:
        from huggingface_hub import HfApi

        api = HfApi()
        videos = []
        for scene in api.list_repo_tree(self.repo, repo_type="dataset", path_in_repo=self.base, revision=self.revision):
            if "scene_" not in scene.path.rsplit("/", 1)[-1]:
                continue
            for camera in api.list_repo_tree(self.repo, repo_type="dataset", path_in_repo=scene.path, revision=self.revision):
                ref = parse_video_path(f"{camera.path}/{VIDEO_FILENAME}", self.base)
                if ref:
                    videos.append(ref)
        return sorted(videos, key=lambda v: v.video_id)

    def fetch(self, video: VideoRef) -> Path:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=self.repo, repo_type="dataset", filename=video.repo_path, revision=self.revision))


class FolderVideoSource(VideoSource):
    """A local folder laid out like the repository (the generated sample, or a mirror)."""

    def __init__(self, root: str | Path, base: str = DATASET_BASE):
        self.root, self.base = Path(root), base
        self.label = f"folder://{self.root}/{base}"

    def list_videos(self) -> list[VideoRef]:
        found = (parse_video_path(p.relative_to(self.root).as_posix(), self.base)
                 for p in (self.root / self.base).glob(f"scene_*/camera_*/{VIDEO_FILENAME}"))
        return sorted((v for v in found if v), key=lambda v: v.video_id)

    def fetch(self, video: VideoRef) -> Path:
        path = self.root / video.repo_path
        if not path.is_file():
            raise FileNotFoundError(f"{self.label}: {video.repo_path} is missing")
        return path
