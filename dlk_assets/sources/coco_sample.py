"""The bundled COCO-shaped sample: real photos from `skimage.data` with hand-made boxes.

`python -m dlk_assets.sources.coco_sample` rebuilds `dlk_assets/data/coco_sample.parquet`.
`write_coco_parquet` writes any list of items with the features of `detection-datasets/coco`
(tests use it to make bad shards that travel the same code path).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dlk_assets.sources.coco_categories import CATEGORY_NAMES

# (skimage name, image_id, [(category name, [xmin, ymin, xmax, ymax])]), boxes drawn by eye on a pixel grid.
SAMPLE_ANNOTATIONS: tuple[tuple[str, int, list[tuple[str, list[float]]]], ...] = (
    ("astronaut", 900001, [("person", [20, 15, 370, 512])]),
    ("chelsea", 900002, [("cat", [0, 0, 440, 300])]),
    ("coffee", 900003, [("cup", [172, 18, 418, 305]), ("spoon", [320, 65, 425, 325]), ("dining table", [0, 0, 600, 400])]),
    ("rocket", 900004, []),  # a launch pad: no COCO category applies
    ("camera", 900005, [("person", [0, 65, 330, 512])]),
    ("horse", 900006, [("horse", [18, 8, 388, 312])]),
    ("clock", 900007, [("clock", [140, 95, 270, 215])]),
    ("coins", 900008, []),  # coins: no COCO category applies
)


def _features():
    from datasets import ClassLabel, Features, List, Value
    from datasets import Image as HFImage

    return Features({
        "image_id": Value("int64"),
        "image": HFImage(),
        "width": Value("int32"),
        "height": Value("int32"),
        "objects": {
            "bbox_id": List(Value("int64")),
            "category": List(ClassLabel(names=list(CATEGORY_NAMES))),
            "bbox": List(List(Value("float64"), length=4)),
            "area": List(Value("int64")),
        },
    })


def skimage_photo(name: str) -> Image.Image:
    """One of the photos that ship with scikit-image, as RGB."""
    from skimage import data

    pixels = getattr(data, name)()
    if pixels.dtype == bool:  # the horse is a mask: white horse on black
        pixels = np.where(pixels, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """Encode as JPEG, as COCO ships its images."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def sample_items() -> list[dict[str, Any]]:
    """The sample as stream items with the fields of `detection-datasets/coco`."""
    items = []
    for name, image_id, objects in SAMPLE_ANNOTATIONS:
        image = skimage_photo(name)
        boxes = [box for _, box in objects]
        items.append({
            "image_id": image_id,
            "image": {"bytes": jpeg_bytes(image), "path": f"{name}.jpg"},
            "width": image.width,
            "height": image.height,
            "objects": {
                "bbox_id": [image_id * 10 + i for i in range(len(objects))],
                "category": [CATEGORY_NAMES.index(category) for category, _ in objects],
                "bbox": boxes,
                "area": [int((b[2] - b[0]) * (b[3] - b[1])) for b in boxes],
            },
        })
    return items


def write_coco_parquet(items: list[dict[str, Any]], path: str | Path) -> Path:
    """Write items as a parquet file with the Hugging Face features of `detection-datasets/coco`."""
    from datasets import Dataset

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(items, features=_features()).to_parquet(str(path))
    return path


def main() -> None:
    target = Path(__file__).resolve().parent.parent / "data" / "coco_sample.parquet"
    write_coco_parquet(sample_items(), target)
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
