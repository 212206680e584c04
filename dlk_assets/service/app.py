"""The HTTP API (FastAPI): the seed's vector endpoints, search over the lake's sources, files by id, and
the search page. Every /api/v1 route needs `Authorization: Bearer <key>`; the key's tenant scopes it.
Errors are the seed's shape (`success`, `error_code`, `message`, `details`) with a fitting status."""

import logging
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from dlk_assets.lake.files import FileNotFoundInStore, parse_file_id
from dlk_assets.retrieval.requests import MAX_K
from dlk_assets.service.auth import tenant_of
from dlk_assets.service.body_limit import BodySizeLimit
from dlk_assets.service.fast_json import FastJSONRoute
from dlk_assets.service.state import RECORD_SOURCES, ServiceState
from dlk_assets.vectors.errors import VectorServiceError
from dlk_assets.vectors.records import (
    DatasetCreate,
    DatasetInfo,
    SearchRequest,
    SearchResponse,
    VectorBatchInsert,
    VectorBatchResponse,
    VectorResponse,
)

log = logging.getLogger("dlk.service")
# The page loads nothing from elsewhere: inline script and style, files as blob: URLs, API calls to itself.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; "
               "media-src 'self' blob:; connect-src 'self'")
API = "/api/v1"


class SourceSearchRequest(BaseModel):
    """A text query over one of the lake's sources, in one of its modes."""

    model_config = ConfigDict(extra="forbid")

    query: str
    mode: str | None = None
    top_k: int = Field(default=10, ge=1, le=MAX_K)
    where: str | None = None


class SourceLikeRequest(BaseModel):
    """Search by example: a stored image or video (its `file_id`) as the query over images or video chunks."""

    model_config = ConfigDict(extra="forbid")

    file_id: str = Field(max_length=64)
    top_k: int = Field(default=10, ge=1, le=MAX_K)
    where: str | None = None


def _json(model: BaseModel) -> Response:
    """`model` as JSON, serialized once by pydantic. Returned as a model, FastAPI would validate it again
    against the route's `response_model` and encode it twice (0.2 ms of a 10-hit search's ~0.8 ms in
    the framework); the `response_model` stays on the route for the OpenAPI document."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


def _error(exc: VectorServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _validation_error(exc: RequestValidationError) -> VectorServiceError:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
    return VectorServiceError("VALIDATION_ERROR", f"{field}: {first['msg']}", {"field": field})


def create_app(state: ServiceState) -> FastAPI:
    """The service for `state` (see `state.build_state`)."""
    app = FastAPI(title="dlk-assets vector service", version="1", summary=__doc__.splitlines()[0],
                  openapi_url=f"{API}/openapi.json", docs_url=f"{API}/docs", redoc_url=None)
    app.router.route_class = FastJSONRoute  # every route below parses its JSON body in Rust
    app.add_middleware(BodySizeLimit, max_bytes=state.max_body_bytes)

    @app.exception_handler(VectorServiceError)
    async def service_error(request: Request, exc: VectorServiceError) -> JSONResponse:
        return _error(exc, {"WWW-Authenticate": "Bearer"} if exc.error_code == "UNAUTHORIZED" else None)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE",
                415: "UNSUPPORTED_MEDIA_TYPE"}.get(exc.status_code, "VALIDATION_ERROR")
        body = VectorServiceError(code, str(exc.detail)).body()
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        return _error(VectorServiceError("INTERNAL_ERROR", f"{type(exc).__name__}: the request failed; see the service log"))

    # The key checks are a hash and a dict lookup: as coroutines they run on the event loop rather
    # than costing each request a hop through the thread pool (sync dependencies run there).
    async def tenant(authorization: Annotated[str | None, Header()] = None) -> str:
        return tenant_of(authorization, state.api_keys)

    Tenant = Annotated[str, Depends(tenant)]

    async def lake_tenant(caller: Tenant) -> str:
        # The lake's sources and their files belong to one tenant; to anyone else they do not exist.
        if caller != state.lake_tenant:
            raise VectorServiceError("SOURCE_NOT_FOUND", "no sources for this tenant")
        return caller

    LakeTenant = Annotated[str, Depends(lake_tenant)]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        text = resources.files("dlk_assets.service").joinpath("page.html").read_text(encoding="utf-8")
        return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get(f"{API}/health")
    def health() -> dict[str, Any]:
        """Liveness (no key needed)."""
        return {"success": True, "status": "ok"}

    @app.post(f"{API}/datasets", status_code=201, response_model=DatasetInfo)
    def create_dataset(body: DatasetCreate, caller: Tenant) -> DatasetInfo:
        """Create one of the caller's datasets, of `dimensions`-sized vectors from `model`; its name is its id."""
        return state.vectors.create_dataset(body, caller)

    @app.get(f"{API}/datasets", response_model=list[DatasetInfo])
    def list_datasets(caller: Tenant) -> list[DatasetInfo]:
        """The caller's datasets, and the lake's shared ones (whose records are scoped to each tenant)."""
        return state.vectors.datasets(caller)

    @app.get(API + "/datasets/{dataset_id}", response_model=DatasetInfo)
    def get_dataset(dataset_id: str, caller: Tenant) -> DatasetInfo:
        """The dataset, with how its vector searches are answered right now (`search_path`)."""
        return state.vectors.describe(dataset_id, caller)

    @app.delete(API + "/datasets/{dataset_id}")
    def delete_dataset(dataset_id: str, caller: Tenant) -> dict[str, Any]:
        """Delete one of the caller's datasets with all its records."""
        removed = state.vectors.delete_dataset(dataset_id, caller)
        return {"success": True, "dataset_id": dataset_id, "deleted_count": removed}

    @app.post(API + "/datasets/{dataset_id}/vectors/batch", response_model=VectorBatchResponse)
    def insert_vectors(dataset_id: str, body: VectorBatchInsert, caller: Tenant) -> VectorBatchResponse:
        """Insert 1-1000 records; each is validated alone, so bad ones fail without blocking good ones.
        A batch that stored nothing because every record failed answers with the first failure's code
        and status (4xx), the whole batch response in `details.batch`."""
        result = state.vectors.insert_batch(dataset_id, caller, body)
        if result.failed_count and not result.inserted_count and not result.skipped_count:
            first = result.errors[0]
            raise VectorServiceError(first.error_code, f"none of the {result.failed_count} record(s) was stored; "
                                     f"vectors[{first.index}]: {first.message}", {**first.details, "batch": result.model_dump()})
        return result

    @app.post(API + "/datasets/{dataset_id}/search", response_model=SearchResponse)
    def search_vectors(dataset_id: str, body: SearchRequest, caller: Tenant) -> Response:
        """Top-k of the caller's records by `query_vector` or `query_text` (vector, bm25 or hybrid)."""
        return _json(state.vectors.search(dataset_id, caller, body))

    @app.get(API + "/datasets/{dataset_id}/vectors/{vector_id}", response_model=VectorResponse)
    def get_vector(dataset_id: str, vector_id: str, caller: Tenant) -> Response:
        """One of the caller's records, with its vector."""
        return _json(state.vectors.get(dataset_id, caller, vector_id))

    @app.delete(API + "/datasets/{dataset_id}/vectors/{vector_id}")
    def delete_vector(dataset_id: str, vector_id: str, caller: Tenant) -> dict[str, Any]:
        state.vectors.delete(dataset_id, caller, vector_id)
        return {"success": True, "deleted": True, "vector_id": vector_id, "dataset_id": dataset_id}

    @app.get(f"{API}/sources")
    def list_sources(caller: LakeTenant) -> dict[str, Any]:
        """The lake's sources, their search modes, and the vector datasets that serve record sources."""
        return {"success": True, "sources": [
            {"name": name, "modes": list(spec.search.modes), "modality": spec.modality,
             "dataset": name if name in RECORD_SOURCES else None}
            for name, spec in state.sources.sources.items()]}

    @app.post(API + "/sources/{source}/search")
    def search_source(source: str, body: SourceSearchRequest, caller: LakeTenant) -> dict[str, Any]:
        """Text search over a source's active table (COCO images, video chunks, agent memory)."""
        if source in RECORD_SOURCES:
            raise VectorServiceError("VALIDATION_ERROR", f"{source} holds vector records: search it with "
                                     f"POST {API}/datasets/{source}/search", {"source": source})
        return state.sources.search(source, body.query, body.mode, body.top_k, body.where)

    @app.post(API + "/sources/{source}/search/like")
    def search_source_like(source: str, body: SourceLikeRequest, caller: LakeTenant) -> dict[str, Any]:
        """Images (coco) or video chunks (videos) that look like a stored image or video, by its file_id."""
        return state.sources.search_like(source, state.files, body.file_id, body.top_k, body.where)

    @app.get(API + "/sources/{source}/lineage/{item:path}")
    def item_lineage(source: str, item: str, caller: LakeTenant) -> dict[str, Any]:
        """Where an item came from: source item, file, rows, vectors per model, slices."""
        return state.sources.lineage(source, item)

    @app.get(API + "/files/{file_id}")
    def get_file(file_id: str, caller: LakeTenant) -> StreamingResponse:
        """The file's bytes, streamed with its content type (images and clips that rows reference)."""
        try:
            stored = state.files.stat(parse_file_id(file_id))
        except FileNotFoundInStore:
            raise VectorServiceError("FILE_NOT_FOUND", f"file {file_id[:64]!r} not found", {"file_id": file_id[:64]}) from None
        return StreamingResponse(state.files.stream(stored.file_id), media_type=stored.content_type, headers={
            "Content-Length": str(stored.size), "ETag": f'"{stored.sha256}"', "Cache-Control": "private, max-age=3600",
            "Content-Disposition": f'inline; filename="{_safe_filename(stored.filename)}"'})

    return app


def _safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:128] or "file"
