"""COCO detection records: read from Hugging Face or from the bundled sample, one shard at a time.

Both are read from their parquet row groups (`ParquetSource`); the bundled sample is a parquet file
with the same features as `detection-datasets/coco`, so the code path is the same. Images arrive
as their raw bytes and are decoded here, so one corrupt image fails its item, not the shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Any

from dlk_assets.media.images import CorruptImageError, ImageInfo, inspect_image
from dlk_assets.sources.coco_categories import label_index_to_coco_id
from dlk_assets.sources.shards import (  # noqa: F401  (re-exported: the COCO modules import them from here)
    BadRecordError,
    ParquetSource,
    ShardRead,
    SkippedRecord,
    read_shard_records,
    shard_index,
    shard_key,
)

HF_COCO_DATASET = "detection-datasets/coco"
BUNDLED_SAMPLE = "bundled-sample"
REQUIRED_FIELDS = ("image", "image_id", "width", "height", "objects")


@dataclass(frozen=True)
class CocoRecord:
    """One image with its annotations, as it arrived from the source (boxes still xyxy)."""

    position: int  # position in the stream: stable across re-reads of the same source
    image_id: int
    width: int
    height: int
    image_bytes: bytes
    image: ImageInfo  # what the bytes decoded to (format, MIME type, size): decoded once, here
    bboxes_xyxy: list[list[float]]
    category_ids: list[int]


def bundled_sample_path() -> str:
    """Path of the COCO-shaped parquet sample shipped inside the package."""
    return str(resources.files("dlk_assets") / "data" / "coco_sample.parquet")


def xyxy_to_coco(bbox_xyxy: list[float]) -> list[float]:
    """Convert a box from [xmin, ymin, xmax, ymax] to COCO [x, y, width, height]."""
    if len(bbox_xyxy) != 4:
        raise ValueError(f"a box needs 4 numbers, got {len(bbox_xyxy)}: {bbox_xyxy!r}")
    xmin, ymin, xmax, ymax = (float(v) for v in bbox_xyxy)
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise ValueError(f"box has a non-finite coordinate: {bbox_xyxy!r}")
    if xmax < xmin or ymax < ymin:
        raise ValueError(f"box has xmax < xmin or ymax < ymin: {bbox_xyxy!r}")
    return [xmin, ymin, xmax - xmin, ymax - ymin]


def parse_record(raw: dict[str, Any], position: int, max_pixels: int | None = None) -> CocoRecord:
    """Turn one raw stream item into a `CocoRecord`, or raise `BadRecordError` naming item and field.
    Images declaring more than `max_pixels` are bad items (never decoded)."""
    item = f"stream position {position}" + (f" (image_id {raw['image_id']})" if raw.get("image_id") is not None else "")
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) is None]
    if missing:
        raise BadRecordError(f"{item}: missing field(s) {', '.join(missing)}")
    image = raw["image"]
    image_bytes = image.get("bytes") if isinstance(image, dict) else None
    if not image_bytes:
        raise BadRecordError(f"{item}: field 'image' carries no bytes")
    objects = raw["objects"]
    boxes = list(objects.get("bbox") or [])
    labels = list(objects.get("category") or [])
    if len(boxes) != len(labels):
        raise BadRecordError(f"{item}: field 'objects' has {len(boxes)} boxes but {len(labels)} categories")
    try:
        width, height = int(raw["width"]), int(raw["height"])
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        for box in boxes:
            xyxy_to_coco(box)
        category_ids = [label_index_to_coco_id(int(label)) for label in labels]
        info = inspect_image(bytes(image_bytes), max_pixels)
        if (info.width, info.height) != (width, height):
            raise ValueError(f"field 'image' is {info.width}x{info.height} but width/height say {width}x{height}")
    except CorruptImageError as exc:
        raise BadRecordError(f"{item}: field 'image': {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise BadRecordError(f"{item}: {exc}") from exc
    return CocoRecord(
        position=position,
        image_id=int(raw["image_id"]),
        width=width,
        height=height,
        image_bytes=bytes(image_bytes),
        image=info,
        bboxes_xyxy=[[float(v) for v in box] for box in boxes],
        category_ids=category_ids,
    )


@dataclass(frozen=True)
class CocoStream(ParquetSource):
    """Where COCO records come from: a Hugging Face dataset id, or parquet files of the same shape."""

    def bundled_files(self) -> list[str]:
        return [bundled_sample_path()]

    def read_shard(self, index: int, shard_size: int, on_bad_record: str = "skip",
                   max_pixels: int | None = None) -> ShardRead[CocoRecord]:
        """Read shard `index`; bad records are skipped and reported, or raise when `on_bad_record='fail'`.
        A repeated image_id keeps its first item."""
        return read_shard_records(
            self.iter_raw(index * shard_size, shard_size), partial(parse_record, max_pixels=max_pixels),
            lambda raw: f"image_id {raw.get('image_id')}",
            on_bad_record, f"{shard_key(index)} is empty: the source {self.label} has no items at positions "
            f"{index * shard_size}..{(index + 1) * shard_size - 1} (shard size {shard_size})",
            identity=lambda record: str(record.image_id),
        )
