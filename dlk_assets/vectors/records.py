"""The seed's request and response models (Pydantic), for the service's OpenAPI document and for callers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

MAX_BATCH = 1000
# Requests are strict: "0.5" is not a vector value, true is not 1, "2" is not a chunk index, "yes" is not
# a flag. Lax coercion would store what the caller never meant; unknown fields are refused likewise.
_REQUEST = ConfigDict(extra="forbid", strict=True)


class VectorCreate(BaseModel):
    """Vector creation request model (the seed's): `id` is generated when absent."""

    model_config = _REQUEST

    id: str | None = None
    document_id: str
    chunk_id: str | None = None
    values: list[float]
    content: str | None = None
    content_hash: str | None = None
    metadata: dict[str, Any] | None = None
    content_type: str | None = None
    language: str | None = None
    chunk_index: int | None = None
    chunk_count: int | None = None
    model: str | None = None


class VectorResponse(BaseModel):
    """Vector response model (the seed's)."""

    id: str
    dataset_id: str
    document_id: str
    chunk_id: str | None = None
    values: list[float]
    content: str | None = None
    content_hash: str | None = None
    metadata: dict[str, Any]
    content_type: str | None = None
    language: str | None = None
    chunk_index: int | None = None
    chunk_count: int | None = None
    model: str | None = None
    dimensions: int
    created_at: datetime
    updated_at: datetime
    tenant_id: str | None = None


class VectorBatchInsert(BaseModel):
    """Batch insertion request (the seed's). Records are checked one by one, so a bad record fails alone:
    the envelope takes them as objects and each is validated as a `VectorCreate`."""

    model_config = _REQUEST

    vectors: list[Any] = Field(min_length=1, max_length=MAX_BATCH)
    skip_existing: bool = False
    overwrite: bool = False
    batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH)


class RecordError(BaseModel):
    """Why one record of a batch was not stored."""

    index: int
    id: str | None = None
    error_code: str
    message: str
    details: dict[str, Any] = {}


class VectorBatchResponse(BaseModel):
    """Batch operation response (the seed's), plus `errors`: the same failures with their codes."""

    inserted_count: int
    skipped_count: int = 0
    failed_count: int = 0
    error_messages: list[str] = []
    processing_time_ms: float
    errors: list[RecordError] = []


class DatasetCreate(BaseModel):
    """`POST /api/v1/datasets`: the name is the dataset's id in every later path."""

    model_config = _REQUEST

    name: str
    dimensions: int = Field(ge=1, le=16_384)
    model: str


class DatasetInfo(BaseModel):
    """A dataset: its vectors' size and model, and whether the API may write it (a source's table may not)."""

    name: str
    dimensions: int
    model: str
    created_at: str
    read_only: bool = False
    table: str
    search_path: str | None = None  # how vector searches are answered now (GET /datasets/{id} only)
    # The encoder that made a served source's vectors (never serialized): its `query_text` is embedded by
    # that very encoder, since two encoders of one model id (minilm, minilm-bf16) make different vectors.
    _query_encoder: Any = PrivateAttr(default=None)


class SearchOptions(BaseModel):
    """The seed's search options; `mode` (vector, bm25, hybrid) and `include_values` are additions."""

    model_config = _REQUEST

    top_k: int = Field(default=10, ge=1, le=1000)
    filters: dict[str, Any] | None = None
    include_content: bool = True
    include_metadata: bool = True
    include_values: bool = False
    mode: str = "vector"


class SearchRequest(BaseModel):
    """The seed's Search Flow body: `query_vector`, or `query_text` embedded by the dataset's model."""

    model_config = _REQUEST

    query_vector: list[float] | None = None
    query_text: str | None = None
    options: SearchOptions = SearchOptions()


class SearchResult(BaseModel):
    """One hit: rank, score and the record's fields (content and metadata when asked for)."""

    rank: int
    score: float | None
    id: str
    document_id: str
    chunk_id: str | None = None
    content: str | None = None
    metadata: dict[str, Any] | None = None
    content_type: str | None = None
    language: str | None = None
    chunk_index: int | None = None
    chunk_count: int | None = None
    model: str | None = None
    values: list[float] | None = None


class SearchResponse(BaseModel):
    """What a search returns."""

    success: bool = True
    dataset_id: str
    mode: str
    results: list[SearchResult]
    total_results: int
    query_time_ms: float
    # How the vector leg was answered and the recall it delivers (e.g. "exact scan over 1000 vectors,
    # recall 1.0"); None for BM25 alone and for a dataset shared by every tenant (its sizes are others').
    search_path: str | None = None
