"""Decode, inspect and thumbnail image bytes without trusting them."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff"}


class CorruptImageError(ValueError):
    """Image bytes that do not decode to a complete image."""


@dataclass(frozen=True)
class ImageInfo:
    """What the bytes really are: format, MIME type and pixel size."""

    format: str
    content_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return {"JPEG": "jpg"}.get(self.format, self.format.lower())


def inspect_image(data: bytes) -> ImageInfo:
    """Fully decode `data` (so truncation is caught) and report its format and size."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or "UNKNOWN"
            image.load()  # verify() misses truncated JPEG bodies; a full decode does not
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(f"image bytes do not decode ({len(data)} bytes): {exc}") from exc
    return ImageInfo(image_format, CONTENT_TYPES.get(image_format, "application/octet-stream"), width, height)


def decode_rgb(data: bytes) -> Image.Image:
    """Decode image bytes to an RGB PIL image, raising `CorruptImageError` on bad bytes."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(f"image bytes do not decode ({len(data)} bytes): {exc}") from exc
    return image.convert("RGB")


def contact_sheet_data_uri(images: list[Image.Image], height: int = 72) -> str:
    """The images side by side at a common height, as one JPEG data URI (a video's chunks at a glance)."""
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    tiles = [image.convert("RGB").resize((max(1, round(image.width * height / image.height)), height)) for image in images]
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 2 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 2
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
