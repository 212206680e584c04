"""Search the lake's sources (COCO images, video chunks, agent memory) from a long-lived process: the
active encoders load once and stay warm, tables stay open and are refreshed per query. Images and
video chunks are also searched by example (a stored file as the query)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any
from urllib.parse import quote

import numpy as np

from dlk_assets.defs.pipeline.by_example import (
    StoredFileMissing,
    checked_query,
    resolve_stored,
    search_like,
)
from dlk_assets.defs.pipeline.index import served_search_path
from dlk_assets.defs.pipeline.serving import embeddings_table, search_table
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.encoders.base import Encoder, Output
from dlk_assets.lake.files import FileStore
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.lineage import trace_item
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.retrieval.filters import InvalidSearchInput
from dlk_assets.retrieval.requests import Hit
from dlk_assets.vectors.errors import VectorServiceError

# How long an answer about which encoder is active may be reused before the registry is asked again.
ACTIVE_MODEL_TTL_S = 5.0


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class SourceSearch:
    """The sources a service answers for, with their warm encoders and open tables."""

    lake: Lake
    registry: ModelRegistry
    sources: dict[str, SourceSpec]
    slices_root: Path
    video_frames: int = 3  # frames a video query is sampled at (as each chunk is embedded from)
    _served: dict[str, tuple[float, Encoder, Table]] = field(default_factory=dict, init=False, repr=False)
    _lock: Lock = field(default_factory=Lock, init=False, repr=False)

    def spec(self, name: str) -> SourceSpec:
        """The source called `name`; `SOURCE_NOT_FOUND` otherwise."""
        if name not in self.sources:
            raise VectorServiceError("SOURCE_NOT_FOUND", f"source {name!r} not found", {"source": name,
                                     "sources": sorted(self.sources)})
        return self.sources[name]

    def warm_up(self) -> dict[str, str]:
        """Load every source's active encoder and open its table now; per source, what is served or why not."""
        state = {}
        for name in self.sources:
            try:
                encoder, _ = self.served(name)
                state[name] = encoder.name
            except VectorServiceError as exc:
                state[name] = exc.message
        return state

    def served(self, name: str) -> tuple[Encoder, Table]:
        """The source's active encoder (loaded, warm) and its table (refreshed)."""
        spec = self.spec(name)
        with self._lock:
            cached = self._served.get(name)
        if cached and time.monotonic() - cached[0] < ACTIVE_MODEL_TTL_S:
            _, encoder, table = cached
            table.refresh()
            return encoder, table
        try:
            encoder = self.registry.active(spec, self.lake)
            table = cached[2] if cached and cached[1] is encoder else embeddings_table(spec, self.lake, encoder)
        except LookupError as exc:
            raise VectorServiceError("SERVICE_NOT_READY", str(exc), {"source": name}) from None
        if not cached or cached[1] is not encoder:
            _warm(encoder)
        table.refresh()
        with self._lock:
            self._served[name] = (time.monotonic(), encoder, table)
        return encoder, table

    def search(self, name: str, query: str, mode: str | None, k: int, where: str | None) -> dict[str, Any]:
        """Top-k of the source for a text query, each hit with its file and lineage links."""
        started = time.perf_counter()
        spec = self.spec(name)
        encoder, table = self.served(name)
        try:
            hits = search_table(spec, table, encoder, query, mode, k, where)
        except (InvalidSearchInput, ValueError) as exc:
            raise VectorServiceError("VALIDATION_ERROR", str(exc), {"source": name}) from None
        answer = self._answer(name, spec, mode or spec.search.modes[0], encoder, hits, started)
        # How the vector leg was answered, with its recall; BM25 alone is the engine's index.
        answer["search_path"] = ("BM25 on Deep Lake's bm25 index" if answer["mode"] == "bm25"
                                 else served_search_path(spec, table, wait=False))
        return answer

    def search_like(self, name: str, store: FileStore, file_id: str, k: int, where: str | None) -> dict[str, Any]:
        """Top-k of the source (images, video chunks) that look like the stored image or video `file_id`."""
        started = time.perf_counter()
        spec = self.spec(name)
        try:
            query = checked_query(spec, k, where, lambda work: resolve_stored(file_id, store, work, self.video_frames), "file_id")
        except StoredFileMissing as exc:
            raise VectorServiceError("FILE_NOT_FOUND", str(exc), {"file_id": file_id[:64]}) from None
        except InvalidSearchInput as exc:
            raise VectorServiceError("VALIDATION_ERROR", str(exc), {"source": name}) from None
        encoder, table = self.served(name)
        try:
            hits = search_like(spec, table, encoder, query, k, where, "file_id")
        except ValueError as exc:  # an encoder without image features, a filter on a missing column
            raise VectorServiceError("VALIDATION_ERROR", str(exc), {"source": name}) from None
        except LookupError as exc:  # rows embedded before their table held image features
            raise VectorServiceError("SERVICE_NOT_READY", str(exc), {"source": name}) from None
        return self._answer(name, spec, "like", encoder, hits, started)

    @staticmethod
    def _answer(name: str, spec: SourceSpec, mode: str, encoder: Encoder, hits: list[Hit], started: float) -> dict[str, Any]:
        """The seed-style answer: hits with their file and lineage links, the encoder, the time taken."""
        results = []
        for hit in hits:
            values = {key: _json_value(value) for key, value in hit.values.items()}
            item = spec.lineage.item_of(values) if spec.lineage.item_of else None
            results.append({
                "rank": hit.rank, "score": hit.score, "row_key": hit.row_key, "item_id": item, "values": values,
                "file_url": f"/api/v1/files/{values['file_id']}" if values.get("file_id") else None,
                "lineage_url": f"/api/v1/sources/{name}/lineage/{quote(str(item), safe='')}" if item is not None else None,
            })
        return {"success": True, "source": name, "mode": mode, "encoder": encoder.name,
                "results": results, "total_results": len(results),
                "query_time_ms": round((time.perf_counter() - started) * 1000, 3)}

    def lineage(self, name: str, item: str) -> dict[str, Any]:
        """The item's chain: source item, file, rows, vectors per model, slices."""
        spec = self.spec(name)
        try:
            chain = trace_item(spec, self.lake, self.registry, item, self.slices_root)
        except LookupError as exc:
            raise VectorServiceError("NOT_FOUND", str(exc), {"source": name, "item": item}) from None
        return {"success": True, "source": name, "item": item,
                "rows": [_json_value(dataclasses.asdict(link)) for link in chain]}


def _warm(encoder: Encoder) -> None:
    """Load the weights and run one query, so the first user's search costs what every later one does."""
    encoder.load()
    if encoder.modality == "text" and Output.POOLED in encoder.outputs:
        encoder.encode_pooled(["warm up"])
    else:
        encoder.encode_query_tokens(["warm up"])
