"""The seed's validation rules for one vector record, each failure a `VectorServiceError` with its code.

A valid record becomes a table row: the seed's fields, `tenant_id` from its metadata, absent optional
text as "" and absent optional integers as `ABSENT_INT` (the columns are typed, so no NULLs).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from dlk_assets.vectors.errors import VectorServiceError
from dlk_assets.vectors.iso639 import ISO_639_1
from dlk_assets.vectors.known_models import check_model
from dlk_assets.vectors.records import DatasetInfo, VectorCreate
from dlk_assets.vectors.schema import EMBEDDING, TENANT

MAX_CONTENT_CHARS = 10_000
MAX_METADATA_BYTES = 10 * 1024
MAX_ID_CHARS = 256
MAX_CHUNK_COUNT = 2**31 - 1
ABSENT_INT = -1
DEFAULT_CONTENT_TYPE, DEFAULT_LANGUAGE = "text/plain", "en"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOP_LEVEL_TYPES = ("application", "audio", "font", "example", "image", "message", "model", "multipart", "text", "video")
# RFC 6838 names (restricted-name), with optional `; parameter=value` pairs.
_MIME = re.compile(r"(?P<type>[a-z]+)/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}(\s*;\s*[a-z0-9!#$&^_.+-]+=(\"[^\"]*\"|[^;\s]+))*",
                   re.IGNORECASE)
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


def now_iso() -> str:
    """UTC now as the seed's timestamps write it: `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_tenant_id(tenant: Any, where: str = "tenant_id") -> str:
    """A tenant id: 1-128 letters, digits and `_ . : @ -`, starting with a letter or digit."""
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise VectorServiceError("VALIDATION_ERROR", f"{where} must be 1-128 letters, digits or _ . : @ - "
                                 f"(starting with a letter or digit), got {str(tenant)[:80]!r}", {"field": where})
    return tenant


def check_uuid4(value: str, field: str) -> str:
    """The canonical (lower-case, hyphenated) form of a version-4 UUID."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        parsed = None
    if parsed is None or parsed.version != 4 or parsed.variant != uuid.RFC_4122:
        raise VectorServiceError("VALIDATION_ERROR", f"{field} must be a UUID v4, got {str(value)[:80]!r}", {"field": field})
    return str(parsed)


def _text(value: str | None, field: str, limit: int = MAX_ID_CHARS) -> str:
    if value is None:
        return ""
    if len(value) > limit:
        raise VectorServiceError("VALIDATION_ERROR", f"{field} is {len(value)} characters long; the limit is {limit}",
                                 {"field": field, "length": len(value), "max_length": limit})
    _check_utf8(value, field)
    return value


def _check_utf8(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise VectorServiceError("VALIDATION_ERROR", f"{field} is not valid UTF-8 (unpaired surrogate at character "
                                 f"{exc.start})", {"field": field, "position": exc.start}) from None
    if "\x00" in value:  # valid UTF-8, but no text column of PostgreSQL can hold it
        raise VectorServiceError("VALIDATION_ERROR", f"{field} contains a NUL character", {"field": field})


def check_values(values: Any, dimensions: int, dataset_id: str, field: str = "values") -> np.ndarray:
    """The vector as float32: `dimensions` long and every value finite."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] != dimensions:
        provided = int(array.shape[0]) if array.ndim == 1 else list(array.shape)
        raise VectorServiceError("INVALID_VECTOR_DIMENSIONS", f"Vector dimensions ({provided}) do not match dataset "
                                 f"dimensions ({dimensions})", {"provided_dimensions": provided,
                                                                "expected_dimensions": dimensions, "dataset_id": dataset_id})
    finite = np.isfinite(array)
    if not finite.all() or (np.abs(array) > np.finfo(np.float32).max).any():
        position = int(np.argmin(finite & (np.abs(array) <= np.finfo(np.float32).max)))
        raise VectorServiceError("INVALID_VECTOR_VALUES", f"{field}[{position}] is {float(array[position])}; every value must "
                                 "be a finite 32-bit float", {"field": field, "position": position})
    return array.astype(np.float32)


def _check_metadata(metadata: dict[str, Any] | None, tenant: str) -> dict[str, Any]:
    if metadata is None or TENANT not in metadata:
        raise VectorServiceError("VALIDATION_ERROR", "metadata.tenant_id is required", {"field": "metadata.tenant_id"})
    try:
        text = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise VectorServiceError("VALIDATION_ERROR", f"metadata is not valid JSON: {exc}", {"field": "metadata"}) from None
    if size > MAX_METADATA_BYTES:
        raise VectorServiceError("VALIDATION_ERROR", f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}",
                                 {"field": "metadata", "size_bytes": size, "max_bytes": MAX_METADATA_BYTES})
    if "\x00" in text:
        raise VectorServiceError("VALIDATION_ERROR", "metadata contains a NUL character", {"field": "metadata"})
    claimed = metadata[TENANT]
    if claimed != tenant:
        raise VectorServiceError("TENANT_MISMATCH", "metadata.tenant_id does not match the caller's tenant",
                                 {"field": "metadata.tenant_id"})
    return metadata


def _check_chunk_position(index: int | None, count: int | None) -> tuple[int, int]:
    if count is not None and not 1 <= count <= MAX_CHUNK_COUNT:
        raise VectorServiceError("VALIDATION_ERROR", f"chunk_count must be >= 1, got {count}", {"field": "chunk_count"})
    if index is not None and not 0 <= index < (count if count is not None else MAX_CHUNK_COUNT):
        bound = f" and < chunk_count ({count})" if count is not None else ""
        raise VectorServiceError("VALIDATION_ERROR", f"chunk_index must be >= 0{bound}, got {index}", {"field": "chunk_index"})
    return (ABSENT_INT if index is None else index), (ABSENT_INT if count is None else count)


def _check_content_type(value: str | None) -> str:
    if value is None:
        return DEFAULT_CONTENT_TYPE
    match = _MIME.fullmatch(value.strip())
    if not match or match.group("type").lower() not in _TOP_LEVEL_TYPES:
        raise VectorServiceError("VALIDATION_ERROR", f"content_type must be a valid MIME type like text/plain, got "
                                 f"{value[:80]!r}", {"field": "content_type"})
    return value.strip()


def _check_language(value: str | None) -> str:
    if value is None:
        return DEFAULT_LANGUAGE
    if value not in ISO_639_1:
        raise VectorServiceError("VALIDATION_ERROR", f"language must be an ISO 639-1 code like en, es or fr, got "
                                 f"{value[:20]!r}", {"field": "language"})
    return value


def _check_content(content: str | None, content_hash: str | None) -> tuple[str, str]:
    text = _text(content, "content", MAX_CONTENT_CHARS)
    if content_hash is not None:
        if not isinstance(content_hash, str) or not _HEX64.fullmatch(content_hash.lower()):
            raise VectorServiceError("VALIDATION_ERROR", "content_hash must be 64 hex characters (SHA-256)",
                                     {"field": "content_hash"})
        content_hash = content_hash.lower()  # hex is case-blind; stored as hexdigest() writes it
    if content is None:
        return "", content_hash or ""
    actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if content_hash is not None and content_hash != actual:
        raise VectorServiceError("CONTENT_HASH_MISMATCH", "content_hash is not the SHA-256 of content",
                                 {"field": "content_hash", "provided": content_hash, "computed": actual})
    return text, actual


def parse_record(raw: Any) -> VectorCreate:
    """A batch entry as a `VectorCreate`; wrong types name the field."""
    if not isinstance(raw, dict):
        raise VectorServiceError("VALIDATION_ERROR", f"a vector must be a JSON object, got {type(raw).__name__}")
    try:
        return VectorCreate.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "record"
        raise VectorServiceError("VALIDATION_ERROR", f"{field}: {first['msg']}", {"field": field}) from None


def record_row(record: VectorCreate, dataset: DatasetInfo, tenant: str, timestamp: str) -> dict[str, Any]:
    """The table row for a valid record (without row key and partition), or the first rule it breaks.

    `created_at` and `updated_at` are both `timestamp`; an overwrite keeps the stored `created_at`."""
    model = record.model or dataset.model
    try:
        check_model(model)
    except ValueError as exc:
        raise VectorServiceError("UNKNOWN_MODEL", str(exc), {"field": "model", "model": model}) from None
    if model != dataset.model:
        raise VectorServiceError("MODEL_MISMATCH", f"dataset {dataset.name!r} holds {dataset.model} vectors, not {model}",
                                 {"field": "model", "expected_model": dataset.model, "provided_model": model})
    values = check_values(record.values, dataset.dimensions, dataset.name)
    content, content_hash = _check_content(record.content, record.content_hash)
    chunk_index, chunk_count = _check_chunk_position(record.chunk_index, record.chunk_count)
    document_id = _text(record.document_id, "document_id")
    if not document_id.strip():
        raise VectorServiceError("VALIDATION_ERROR", "document_id is empty", {"field": "document_id"})
    return {
        "id": check_uuid4(record.id, "id") if record.id is not None else str(uuid.uuid4()),
        "document_id": document_id, "chunk_id": _text(record.chunk_id, "chunk_id"),
        EMBEDDING: values, "content": content, "content_hash": content_hash,
        "content_type": _check_content_type(record.content_type), "language": _check_language(record.language),
        "chunk_index": chunk_index, "chunk_count": chunk_count, "model": model,
        "metadata": _check_metadata(record.metadata, tenant), TENANT: tenant,
        "created_at": timestamp, "updated_at": timestamp,
    }


