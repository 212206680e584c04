"""Decode, inspect and thumbnail image bytes without trusting them."""

from __future__ import annotations

import base64
import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff"}


# Real photos are far below this (COCO: ~0.3 MP); a 1.5 MB PNG can declare 40000x40000 and ask for 4.8 GB.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class CorruptImageError(ValueError):
    """Image bytes that do not decode to a complete image, or that declare more pixels than the budget."""


def max_image_pixels() -> int:
    """The pixel budget for decoding one image (`DLK_MAX_IMAGE_PIXELS`, default 50 megapixels)."""
    return int(os.environ.get("DLK_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))


@contextmanager
def _opened(data: bytes, max_pixels: int | None) -> Iterator[Image.Image]:
    """The image with its header read and its declared size checked against the budget before any decoding."""
    budget = max_image_pixels() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            # Our budget decides, not PIL's process-wide limit (which warns, or raises only at twice its value).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # PIL refuses past twice its own limit, in open()
        raise CorruptImageError(f"{exc} (Pillow's own limit, which applies whatever DLK_MAX_IMAGE_PIXELS says); not decoded") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(f"image bytes do not decode ({len(data)} bytes): {exc}") from exc
    with image:
        width, height = image.size
        if width * height > budget:
            raise CorruptImageError(f"image declares {width}x{height} = {width * height} pixels, above the budget of "
                                    f"{budget} (DLK_MAX_IMAGE_PIXELS); not decoded")
        yield image


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


def _load(image: Image.Image, data: bytes) -> None:
    try:
        image.load()  # verify() misses truncated JPEG bodies; a full decode does not
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(f"image bytes do not decode ({len(data)} bytes): {exc}") from exc


def inspect_image(data: bytes, max_pixels: int | None = None) -> ImageInfo:
    """Fully decode `data` (so truncation is caught) and report its format and size; images above the
    pixel budget (`max_pixels`, default `max_image_pixels()`) are refused before decoding."""
    with _opened(data, max_pixels) as image:
        image_format = image.format or "UNKNOWN"
        _load(image, data)
        width, height = image.size
    return ImageInfo(image_format, CONTENT_TYPES.get(image_format, "application/octet-stream"), width, height)


def decode_rgb(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """Decode image bytes to an RGB PIL image, raising `CorruptImageError` on bad bytes or above the pixel budget."""
    with _opened(data, max_pixels) as image:
        _load(image, data)
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
