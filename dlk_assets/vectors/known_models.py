"""Embedding model identifiers a vector record may name, and which of them this service can run itself."""

from __future__ import annotations

# The seed's identifiers with their output sizes (None: the model has more than one size).
KNOWN_MODELS: dict[str, int | None] = {
    "text-embedding-ada-002": 1536,
    "text-embedding-3-small": None,  # 512 or 1536
    "text-embedding-3-large": None,  # 256 to 3072
    "all-MiniLM-L6-v2": 384,
    "instructor-xl": 768,
}
# Models the service embeds `query_text` with, by the encoder catalog name that runs them offline.
LOCAL_ENCODERS = {"all-MiniLM-L6-v2": "minilm"}


def check_model(model: str, dimensions: int | None = None) -> str:
    """`model` when it is known (and, with `dimensions`, of that size); `ValueError` naming the choices otherwise."""
    if model not in KNOWN_MODELS:
        raise ValueError(f"unknown embedding model {model!r}; known models: {', '.join(KNOWN_MODELS)}")
    size = KNOWN_MODELS[model]
    if dimensions is not None and size is not None and size != dimensions:
        raise ValueError(f"model {model!r} makes {size}-dimensional vectors, not {dimensions}")
    return model

