"""A PyTorch dataset over a pinned training slice: the manifest's items, read back from the file store.

    ds = SliceDataset.from_slice("coco_cats", image_size=224)
    loader = DataLoader(ds, batch_size=8, num_workers=2)

Items come from the content-addressed file store by `file_id` (not from the exported copies), and
each one's bytes are checked against the sha256 the manifest recorded, so a model never trains on
bytes other than the ones the slice pinned. Images decode with PIL to a (3, H, W) float tensor in
[0, 1]; video chunks give `frames_per_clip` evenly spaced frames as (T, 3, H, W), decoded by the
project's ffmpeg frame sampler. The store is opened lazily in each process, so the dataset pickles
into DataLoader workers without a live handle.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dlk_assets.lake.files import FileStore, hash_file, sha256_hex
from dlk_assets.media.frames import sample_frames
from dlk_assets.media.images import decode_rgb
from dlk_assets.training.manifest import (
    SliceManifest,
    load_manifest,
    slice_manifest_path,
)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")


class SliceIntegrityError(OSError):
    """An item's bytes are not the ones its slice pinned (sha256 mismatch, or the store found them corrupt)."""


def profile_store() -> FileStore:
    """The file store of the current profile (`DLK_PROFILE`), exactly as the Dagster runs open it."""
    from dlk_assets.profile import profile_resources

    return profile_resources()["files"].process_config_and_initialize().store()


def _to_tensor(image: Image.Image, size: tuple[int, int] | None) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]; resized with PIL (bicubic) to `size` = (height, width) when given."""
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BICUBIC)
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)


def _size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return int(height), int(width)


class SliceDataset(Dataset):
    """The items of one exported slice, in rank order.

    Each item is a dict: `pixels` (an image's (3, H, W) tensor, or a clip's (T, 3, H, W)), after
    `transform` when one is given, plus `rank`, `row_key`, `partition`, `file_id` and `score` from the
    manifest. `open_store` builds the file store in each process (default: the profile's store).
    """

    def __init__(self, manifest: str | Path | SliceManifest, open_store: Callable[[], FileStore] = profile_store,
                 image_size: int | tuple[int, int] | None = None, frames_per_clip: int = 4,
                 transform: Callable[[torch.Tensor], Any] | None = None):
        self.manifest = manifest if isinstance(manifest, SliceManifest) else load_manifest(manifest)
        if frames_per_clip < 1:
            raise ValueError(f"frames_per_clip must be at least 1, got {frames_per_clip}")
        self.open_store = open_store
        self.size = _size(image_size)
        self.frames_per_clip = frames_per_clip
        self.transform = transform
        self._store: FileStore | None = None

    @classmethod
    def from_slice(cls, name: str, home: str | Path | None = None, **options: Any) -> SliceDataset:
        """The slice called `name` in slices.yaml, as exported under `$DAGSTER_HOME/slices/<name>/` (or `home`)."""
        return cls(slice_manifest_path(name, home), **options)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def items(self) -> tuple[dict[str, Any], ...]:
        return self.manifest.items

    def __len__(self) -> int:
        return len(self.manifest.items)

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the recipe for the store, never a handle opened in the parent.
        return {**self.__dict__, "_store": None}

    @property
    def store(self) -> FileStore:
        if self._store is None:
            self._store = self.open_store()
        return self._store

    def describe(self, item: dict[str, Any]) -> str:
        """How errors name an item: slice, rank, row key and file id."""
        return f"slice {self.name!r} item rank {item['rank']} ({item['row_key']}, file {item['file_id']})"

    def _is_video(self, item: dict[str, Any]) -> bool:
        return Path(str(item["file"])).suffix.lower() in VIDEO_SUFFIXES

    def _image(self, item: dict[str, Any]) -> torch.Tensor:
        try:
            data = self.store.get(item["file_id"])
        except OSError as exc:  # the store's own sha256 check (FileIntegrityError) or a failed read
            raise SliceIntegrityError(f"{self.describe(item)}: cannot read its bytes: {exc}") from exc
        actual = sha256_hex(data)
        if actual != item["sha256"]:
            raise SliceIntegrityError(f"{self.describe(item)}: bytes have sha256 {actual}, the manifest pinned {item['sha256']}")
        return _to_tensor(decode_rgb(data), self.size)

    def _clip(self, item: dict[str, Any]) -> torch.Tensor:
        with tempfile.TemporaryDirectory(prefix="dlk-slice-") as work:
            path = Path(work) / f"clip{Path(str(item['file'])).suffix}"
            try:
                self.store.download(item["file_id"], path)
            except OSError as exc:
                raise SliceIntegrityError(f"{self.describe(item)}: cannot read its bytes: {exc}") from exc
            actual, _ = hash_file(path)
            if actual != item["sha256"]:
                raise SliceIntegrityError(f"{self.describe(item)}: bytes have sha256 {actual}, the manifest pinned {item['sha256']}")
            frames = sample_frames(path, self.frames_per_clip)
        size = self.size or (frames[0].image.height, frames[0].image.width)
        tensors = [_to_tensor(frame.image, size) for frame in frames]
        # A clip shorter than T frames repeats its last one, so every clip stacks to the same shape.
        tensors += [tensors[-1]] * (self.frames_per_clip - len(tensors))
        return torch.stack(tensors)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.manifest.items[index]
        pixels = self._clip(item) if self._is_video(item) else self._image(item)
        score = item.get("score")
        return {
            "pixels": self.transform(pixels) if self.transform else pixels,
            "rank": int(item["rank"]), "row_key": item["row_key"], "partition": item["partition"],
            "file_id": item["file_id"], "score": float(score) if score is not None else math.nan,
        }
