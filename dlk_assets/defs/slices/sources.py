"""What a slice can be drawn from: per source, its table, its search, and how its items are named."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from dlk_assets.defs.coco.search import coco_embeddings_table, coco_text_search
from dlk_assets.defs.slices.specs import SOURCES
from dlk_assets.defs.smartspaces.search import chunk_embeddings_table, video_text_search
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.media.frames import sample_frames
from dlk_assets.media.images import decode_rgb
from dlk_assets.retrieval.requests import Hit


@dataclass(frozen=True)
class SliceSource:
    """A searchable source: open its table, search it, name and preview its items."""

    name: str
    open_table: Callable[[Lake, Encoder], Table]
    search: Callable[[Table, Encoder, str, int, str | None], list[Hit]]
    item_fields: tuple[str, ...]  # copied from each hit into the manifest
    item_name: Callable[[dict], str]  # a file-name-safe name from an item's fields
    preview: Callable[[FileStore, str], Image.Image]  # a picture of a stored file, by file_id


def _video_middle_frame(store: FileStore, file_id: str) -> Image.Image:
    with tempfile.TemporaryDirectory(prefix="dlk-preview-") as work:
        return sample_frames(store.download(file_id, Path(work) / "clip.mp4"), 1)[0].image


SLICE_SOURCES = {
    "coco": SliceSource(
        "coco", coco_embeddings_table, coco_text_search, ("image_id",),
        lambda item: str(item["image_id"]), lambda store, file_id: decode_rgb(store.get(file_id)),
    ),
    "videos": SliceSource(
        "videos", chunk_embeddings_table, video_text_search,
        ("video_id", "scene_name", "camera_id", "chunk_index", "start_s", "end_s"),
        lambda item: f"{item['video_id']}_chunk{item['chunk_index']:05d}", _video_middle_frame,
    ),
}
assert set(SLICE_SOURCES) == set(SOURCES), "every source a slice may name needs a SliceSource"
