"""The vector service's errors: the seed's error shape (`success`, `error_code`, `message`, `details`)
and the HTTP status each code answers with."""

from __future__ import annotations

from typing import Any

STATUS = {
    "VALIDATION_ERROR": 422,
    "INVALID_VECTOR_DIMENSIONS": 422,
    "INVALID_VECTOR_VALUES": 422,
    "INVALID_FILTER": 400,
    "UNKNOWN_MODEL": 422,
    "MODEL_MISMATCH": 422,
    "CONTENT_HASH_MISMATCH": 422,
    "QUERY_TEXT_NOT_SUPPORTED": 422,
    "TENANT_MISMATCH": 403,
    "UNAUTHORIZED": 401,
    "VECTOR_NOT_FOUND": 404,
    "DATASET_NOT_FOUND": 404,
    "SOURCE_NOT_FOUND": 404,
    "FILE_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "DUPLICATE_VECTOR": 409,
    "DATASET_ALREADY_EXISTS": 409,
    "READ_ONLY_DATASET": 409,
    "REQUEST_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "SERVICE_NOT_READY": 503,
    "INTERNAL_ERROR": 500,
}


class VectorServiceError(Exception):
    """A refused request or record, with the seed's error code and the details a client acts on."""

    def __init__(self, error_code: str, message: str, details: dict[str, Any] | None = None):
        if error_code not in STATUS:
            raise ValueError(f"unknown error code {error_code!r}")
        super().__init__(message)
        self.error_code, self.message, self.details = error_code, message, details or {}

    @property
    def status(self) -> int:
        """The HTTP status the code answers with."""
        return STATUS[self.error_code]

    def body(self) -> dict[str, Any]:
        """The seed's error shape."""
        return {"success": False, "error_code": self.error_code, "message": self.message, "details": self.details}

    def line(self) -> str:
        """One line for a batch's `error_messages`."""
        return f"{self.error_code}: {self.message}"


def vector_not_found(vector_id: str, dataset_id: str) -> VectorServiceError:
    """The seed's VectorNotFoundException; another tenant's vector answers exactly this too."""
    return VectorServiceError("VECTOR_NOT_FOUND", f"Vector {vector_id!r} not found",
                              {"vector_id": vector_id, "dataset_id": dataset_id})


def duplicate_vector(vector_id: str) -> VectorServiceError:
    """The seed's DuplicateVectorException."""
    return VectorServiceError("DUPLICATE_VECTOR", "Vector with ID already exists", {
        "vector_id": vector_id, "action": "Use overwrite=true to replace or skip_existing=true to skip"})


def dataset_not_found(dataset_id: str) -> VectorServiceError:
    """No dataset of that name (for this caller)."""
    return VectorServiceError("DATASET_NOT_FOUND", f"Dataset {dataset_id!r} not found", {"dataset_id": dataset_id})
