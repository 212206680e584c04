"""What a running service holds: the lake, the file store, the vector layer, the warm source searches and
the API keys, all built once from the instance's resources (the same profile as the Dagster runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.files import FileStore
from dlk_assets.service.auth import load_api_keys
from dlk_assets.service.sources import SourceSearch
from dlk_assets.vectors.known_models import LOCAL_ENCODERS
from dlk_assets.vectors.records import DatasetInfo
from dlk_assets.vectors.store import VectorStore

DEFAULT_MAX_BODY_MB = 32  # a full batch of 1000 x 1536-d vectors is about 20 MB of JSON
# The tenant the lake's own sources (COCO, videos, memory, documents) and their files belong to.
LAKE_TENANT_ENV, DEFAULT_LAKE_TENANT = "DLK_LAKE_TENANT", "local"
# Sources served as read-only vector datasets (their tables hold vector records with a tenant column).
RECORD_SOURCES = ("documents",)


@dataclass
class ServiceState:
    """Everything a request handler needs."""

    vectors: VectorStore
    sources: SourceSearch
    files: FileStore
    api_keys: dict[str, str]
    lake_tenant: str
    max_body_bytes: int


def build_state(resources: dict[str, Any], home: Path, api_keys_file: str | Path | None = None,
                max_body_mb: float | None = None) -> ServiceState:
    """The service's state on the instance in `home`, from the profile's resolved resources."""
    from dlk_assets.defs.pipeline.by_example import video_query_frames
    from dlk_assets.defs.sources import SOURCES

    lake, registry = resources["lake"].lake(), resources["models"].registry()
    keys_file = api_keys_file or os.environ.get("DLK_API_KEYS_FILE")
    if not keys_file:
        raise ValueError("set DLK_API_KEYS_FILE to a file of `key tenant_id` lines (or pass --api-keys)")

    sources = SourceSearch(lake, registry, dict(SOURCES), home / "slices", video_query_frames(resources))

    def attached(name: str):
        def open_served() -> tuple[DatasetInfo, Any]:
            encoder, table = sources.served(name)  # warm encoder, open table, refreshed
            info = DatasetInfo(name=name, dimensions=encoder.dim, model=encoder.model_id,
                               created_at="", read_only=True, table=table.schema.name)
            info._query_encoder = encoder  # the active model embeds questions, whichever variant it is
            return info, table
        return open_served

    def encoder_for(model: str) -> Encoder | None:
        # The registry's encoders: the very objects the sources serve with, so MiniLM loads once per process.
        name = LOCAL_ENCODERS.get(model)
        return registry.encoder(name) if name else None

    max_body = max_body_mb if max_body_mb is not None else float(os.environ.get("DLK_SERVICE_MAX_BODY_MB", DEFAULT_MAX_BODY_MB))
    return ServiceState(
        vectors=VectorStore(lake, attached={name: attached(name) for name in RECORD_SOURCES if name in SOURCES},
                            encoder_for=encoder_for),
        sources=sources,
        files=resources["files"].store(), api_keys=load_api_keys(keys_file),
        lake_tenant=os.environ.get(LAKE_TENANT_ENV, DEFAULT_LAKE_TENANT), max_body_bytes=int(max_body * 1024 * 1024))
