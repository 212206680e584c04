"""API keys: each belongs to one tenant. Keys come from a file (`key tenant_id` per line), never from code."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dlk_assets.vectors.errors import VectorServiceError
from dlk_assets.vectors.validation import check_tenant_id

MIN_KEY_CHARS = 16


class ApiKeyFileError(ValueError):
    """The keys file is missing or has a bad line (named by number)."""


def _digest(key: str) -> str:
    # Keys are looked up by their hash, so neither the table nor a timing difference holds a key.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_api_keys(path: str | Path) -> dict[str, str]:
    """sha256(key) -> tenant for every `key tenant_id` line; blank lines and `#` comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise ApiKeyFileError(f"API keys file {path} does not exist (set DLK_API_KEYS_FILE; one `key tenant_id` per line)")
    keys: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        if len(parts) != 2:
            raise ApiKeyFileError(f"{path}, line {number}: expected `key tenant_id`, got {len(parts)} field(s)")
        key, tenant = parts
        if len(key) < MIN_KEY_CHARS:
            raise ApiKeyFileError(f"{path}, line {number}: a key needs at least {MIN_KEY_CHARS} characters")
        try:
            check_tenant_id(tenant)
        except VectorServiceError as exc:
            raise ApiKeyFileError(f"{path}, line {number}: {exc.message}") from None
        if _digest(key) in keys:
            raise ApiKeyFileError(f"{path}, line {number}: this key is listed twice")
        keys[_digest(key)] = tenant
    if not keys:
        raise ApiKeyFileError(f"API keys file {path} lists no keys")
    return keys


def tenant_of(authorization: str | None, keys: dict[str, str]) -> str:
    """The tenant of the `Authorization: Bearer <key>` header; `UNAUTHORIZED` when missing or unknown."""
    scheme, _, key = (authorization or "").partition(" ")
    tenant = keys.get(_digest(key.strip())) if scheme.lower() == "bearer" and key.strip() else None
    if tenant is None:
        reason = "missing Authorization: Bearer <key> header" if not authorization else "unknown API key"
        raise VectorServiceError("UNAUTHORIZED", reason)
    return tenant
