"""ColQwen3 (`TomoroAI/tomoro-colqwen3-embed-4b`): multi-vector text/image embeddings, bf16 on CUDA.

Weights come from the Hugging Face cache or a local folder; nothing is downloaded at run time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from dlk_assets.encoders.base import (
    Encoder,
    ImageEncoding,
    Output,
    batched,
    make_fingerprint,
    normalize_rows,
    package_version,
    resolve_device,
)

MODEL_ID = "TomoroAI/tomoro-colqwen3-embed-4b"
MAX_VISUAL_TOKENS = 1280
# Keys under which ColPali-style configs record the per-token embedding size.
DIM_KEYS = ("embed_dim", "embedding_dim", "dim", "projection_dim")


class WeightsNotAvailableError(RuntimeError):
    """The model's weights are neither in the Hugging Face cache nor at the configured path."""


def locate_weights(model: str) -> str:
    """A local folder with the model: `model` itself if it is a folder, else the Hugging Face cache."""
    if Path(model).is_dir():
        if not (Path(model) / "config.json").exists():
            raise WeightsNotAvailableError(f"{model} is a folder but holds no config.json: not a model snapshot")
        return str(Path(model))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(model, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError) as exc:
        raise WeightsNotAvailableError(
            f"ColQwen3 weights for {model!r} are not in the Hugging Face cache and no local folder was given. "
            f"Download them once where the hub is reachable (`huggingface-cli download {model}`) and copy the "
            f"cache, or set the encoder's model path to a folder holding the snapshot."
        ) from exc


class ColQwen3Encoder(Encoder):
    """ColQwen3 through transformers (`trust_remote_code`), bf16 on CUDA, float32 on CPU."""

    name = "colqwen3"
    modality = "image"
    outputs = frozenset({Output.MULTI_VECTOR})

    def __init__(self, model: str = MODEL_ID, device: str = "auto", image_batch_size: int = 4, text_batch_size: int = 16):
        self.model_ref = model
        self.device = resolve_device(device)
        self.image_batch_size = image_batch_size
        self.text_batch_size = text_batch_size
        revision = Path(model).name if Path(model).is_dir() else model
        self.fingerprint = make_fingerprint(
            "colqwen3-embed-4b", f"{revision},transformers=={package_version('transformers')}",
            {"max_num_visual_tokens": MAX_VISUAL_TOKENS, "dtype": "bfloat16-on-cuda", "normalize": True},
        )

    @cached_property
    def dim(self) -> int:
        """Per-token embedding size, read from the snapshot's config.json (no weights loaded)."""
        config_path = Path(locate_weights(self.model_ref)) / "config.json"
        config = json.loads(config_path.read_text())
        for key in DIM_KEYS:
            if isinstance(config.get(key), int):
                return int(config[key])
        raise WeightsNotAvailableError(f"{config_path} names no embedding size (looked for {', '.join(DIM_KEYS)})")

    @cached_property
    def _loaded(self):
        import torch
        from transformers import AutoModel, AutoProcessor

        path = locate_weights(self.model_ref)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=True, max_num_visual_tokens=MAX_VISUAL_TOKENS, local_files_only=True)
        model = AutoModel.from_pretrained(
            path, torch_dtype=dtype, trust_remote_code=True, local_files_only=True,
            attn_implementation="sdpa", device_map=self.device,
        ).eval()
        return model, processor

    def load(self) -> None:
        _ = self._loaded

    def _run(self, features) -> list[np.ndarray]:
        import torch

        model, _ = self._loaded
        features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
        with torch.inference_mode():
            embeddings = model(**features).embeddings.to(torch.float32).cpu().numpy()
        mask = features.get("attention_mask")
        out = []
        for i, tokens in enumerate(embeddings):
            # Padding tokens must not vote in MaxSim.
            keep = mask[i].bool().cpu().numpy() if mask is not None and mask.shape[1] == tokens.shape[0] else slice(None)
            out.append(normalize_rows(tokens[keep]))
        return out

    def encode_images(self, images: Sequence[Image.Image]) -> ImageEncoding:
        _, processor = self._loaded
        out: list[np.ndarray] = []
        for batch in batched([image.convert("RGB") for image in images], self.image_batch_size):
            out.extend(self._run(processor.process_images(images=list(batch))))
        return ImageEncoding(out)

    def encode_query_tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        _, processor = self._loaded
        out: list[np.ndarray] = []
        for batch in batched(list(texts), self.text_batch_size):
            out.extend(self._run(processor.process_texts(texts=list(batch))))
        return out
