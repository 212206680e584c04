"""How a COCO image becomes vectors: its bytes from the file store through the encoder.

What the table stores follows from what the encoder produces: always the multi-vector; pooled image
features and labels when the encoder has them.
"""

from __future__ import annotations

from typing import Any

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.encoders.base import Encoder, Output
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.schema import Column, Kind
from dlk_assets.media.images import decode_rgb


def image_columns(encoder: Encoder) -> tuple[Column, ...]:
    """`embedding`, plus `image_features` and `labels` when the encoder produces them."""
    columns = [Column("embedding", Kind.MULTI_VECTOR, encoder.dim)]
    if Output.IMAGE_FEATURES in encoder.outputs:
        columns.append(Column("image_features", Kind.VECTOR, encoder.feature_dim))
    if Output.LABELS in encoder.outputs:
        columns.append(Column("labels", Kind.JSON))
    return tuple(columns)


def embed_images(rows: list[dict[str, Any]], encoder: Encoder, store: FileStore, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One value dict per image row, from the bytes read back by `file_id`."""
    encoding = encoder.encode_images([decode_rgb(store.get(row["file_id"])) for row in rows])
    values: list[dict[str, Any]] = [{"embedding": bag} for bag in encoding.bags]
    if Output.IMAGE_FEATURES in encoder.outputs:
        for value, features in zip(values, encoding.features):
            value["image_features"] = features
    if Output.LABELS in encoder.outputs:
        for value, labels in zip(values, encoding.labels):
            value["labels"] = {"labels": [{"name": name, "probability": round(p, 6)} for name, p in labels]}
    return values


def labels_preview(rows: list[dict[str, Any]]) -> str:
    """What the encoder saw in each image (empty for encoders without labels)."""
    if not rows or "labels" not in rows[0]:
        return ""
    return markdown_table(("image_id", "labels"), [
        (row["image_id"], ", ".join(f"{label['name']} ({label['probability']:.2f})" for label in row["labels"]["labels"]))
        for row in rows])
