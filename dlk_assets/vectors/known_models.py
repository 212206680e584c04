"""Embedding model identifiers a vector record may name, and which of them this service can run itself."""

from __future__ import annotations

# The seed's identifiers with the vector sizes each can make. The v3 models shorten their vectors to any
# size up to their full one (OpenAI's `dimensions` parameter; the seed lists 512 / 1536 and 256-3072 as
# the usual choices).
KNOWN_MODELS: dict[str, range] = {
    "text-embedding-ada-002": range(1536, 1537),
    "text-embedding-3-small": range(1, 1537),
    "text-embedding-3-large": range(1, 3073),
    "all-MiniLM-L6-v2": range(384, 385),
    "instructor-xl": range(768, 769),
}
# Models the service embeds `query_text` with, by the encoder catalog name that runs them offline.
LOCAL_ENCODERS = {"all-MiniLM-L6-v2": "minilm"}


class WrongModelSize(ValueError):
    """A known model that cannot make vectors of the asked size."""


def check_model(model: str, dimensions: int | None = None) -> str:
    """`model` when it is known (and, with `dimensions`, can make vectors of that size); `ValueError`
    naming the choices otherwise (`WrongModelSize` for a known model and a size it cannot make)."""
    if model not in KNOWN_MODELS:
        raise ValueError(f"unknown embedding model {model!r}; known models: {', '.join(KNOWN_MODELS)}")
    sizes = KNOWN_MODELS[model]
    if dimensions is not None and dimensions not in sizes:
        made = str(sizes.start) if len(sizes) == 1 else f"{sizes.start} to {sizes.stop - 1}"
        raise WrongModelSize(f"model {model!r} makes {made}-dimensional vectors, not {dimensions}")
    return model

