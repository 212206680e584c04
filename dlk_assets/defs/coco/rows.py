"""Pure row builders for the COCO tables (no Dagster, no storage)."""

from __future__ import annotations

from typing import Any

from dlk_assets.lake.files import StoredFile
from dlk_assets.lake.schema import DAGSTER_RUN_ID
from dlk_assets.sources.coco import CocoRecord, xyxy_to_coco
from dlk_assets.sources.coco_categories import NAME_BY_COCO_ID


def coco_row_key(image_id: int) -> str:
    """Deterministic key of an image across all COCO tables."""
    return f"coco:{image_id}"


def file_row(record: CocoRecord, stored: StoredFile, source: str, dagster_run_id: str) -> dict[str, Any]:
    """The `coco_files` row for an image whose bytes are in the file store."""
    return {
        "row_key": coco_row_key(record.image_id), "image_id": record.image_id,
        "file_id": stored.file_id, "sha256": stored.sha256, "filename": stored.filename,
        "content_type": stored.content_type, "size": stored.size,
        "source_record": {
            "position": record.position, "width": record.width, "height": record.height,
            "bboxes_xyxy": record.bboxes_xyxy, "category_ids": record.category_ids,
        },
        "source": source, DAGSTER_RUN_ID: dagster_run_id,
    }


def image_row(file_row: dict[str, Any], dagster_run_id: str) -> dict[str, Any]:
    """The `coco_images` row: COCO-style [x, y, w, h] boxes and typed columns from a `coco_files` row."""
    record = file_row["source_record"]
    category_ids = [int(c) for c in record["category_ids"]]
    return {
        "row_key": file_row["row_key"], "image_id": file_row["image_id"],
        "width": int(record["width"]), "height": int(record["height"]),
        "bboxes": [xyxy_to_coco(box) for box in record["bboxes_xyxy"]],
        "category_ids": category_ids,
        "file_id": file_row["file_id"], "sha256": file_row["sha256"],
        "metadata": {
            "dataset": "coco", "original_id": int(file_row["image_id"]),
            "categories": [NAME_BY_COCO_ID[c] for c in category_ids],
            "stream_position": int(record["position"]),
        },
        "source": file_row["source"], DAGSTER_RUN_ID: dagster_run_id,
    }
