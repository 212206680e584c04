"""The encoders this project can run, by name, so configuration can pick one without importing model code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from dlk_assets.encoders.base import Encoder


def _efficientnet(variant: str) -> Callable[[str, str], Encoder]:
    def build(device: str, model_path: str) -> Encoder:
        from dlk_assets.encoders.efficientnet_labels import EfficientNetLabelEncoder

        return EfficientNetLabelEncoder(variant=variant, device=device)

    return build


def _colqwen3(device: str, model_path: str) -> Encoder:
    from dlk_assets.encoders.colqwen import MODEL_ID, ColQwen3Encoder

    return ColQwen3Encoder(model=model_path or MODEL_ID, device=device)


def _minilm(precision: str) -> Callable[[str, str], Encoder]:
    def build(device: str, model_path: str) -> Encoder:
        from dlk_assets.encoders.minilm import MiniLMTextEncoder

        return MiniLMTextEncoder(device=device, precision=precision)

    return build


@dataclass(frozen=True)
class EncoderEntry:
    """One encoder: what documents it embeds, where it runs, and how to build it."""

    name: str
    modality: str  # "image" or "text": the documents it embeds
    summary: str
    build: Callable[[str, str], Encoder]


CATALOG: dict[str, EncoderEntry] = {entry.name: entry for entry in (
    EncoderEntry("efficientnet-lite0", "image", "EfficientNet-Lite0 (ImageNet, 224 px) labels bridged to text by MiniLM; offline, CPU",
                 _efficientnet("efficientnet-lite0")),
    EncoderEntry("efficientnet-lite2", "image", "EfficientNet-Lite2 (ImageNet, 260 px) labels bridged to text by MiniLM; offline, CPU",
                 _efficientnet("efficientnet-lite2")),
    EncoderEntry("colqwen3", "image", "ColQwen3 (TomoroAI/tomoro-colqwen3-embed-4b) multi-vectors; GPU, weights from the HF cache",
                 _colqwen3),
    EncoderEntry("minilm", "text", "all-MiniLM-L6-v2 pooled and token vectors; offline, CPU", _minilm("float32")),
    EncoderEntry("minilm-bf16", "text", "all-MiniLM-L6-v2 in bfloat16: half the memory, vectors within cosine 0.998 "
                 "of minilm's; offline, CPU", _minilm("bfloat16")),
)}
# Names earlier releases accepted.
ALIASES = {"efficientnet-minilm": "efficientnet-lite0"}
DEFAULT_ENCODER = {"image": "efficientnet-lite0", "text": "minilm"}


def canonical_name(name: str, modality: str | None = None) -> str:
    """The catalog name for `name` (aliases resolved), checked against the modality a source needs."""
    resolved = ALIASES.get(name, name)
    if resolved not in CATALOG:
        raise ValueError(f"unknown encoder {name!r}; known encoders: {', '.join(CATALOG)}")
    if modality is not None and CATALOG[resolved].modality != modality:
        raise ValueError(f"encoder {resolved!r} embeds {CATALOG[resolved].modality}s, but this source needs a {modality} "
                         f"encoder: {', '.join(names_for(modality))}")
    return resolved


def names_for(modality: str) -> list[str]:
    """The encoders that embed documents of `modality`."""
    return [name for name, entry in CATALOG.items() if entry.modality == modality]


@lru_cache(maxsize=16)
def build_encoder(name: str, device: str = "auto", model_path: str = "") -> Encoder:
    """The encoder called `name`, built once per process (weights load lazily on first use)."""
    return CATALOG[canonical_name(name)].build(device, model_path)
