"""Search by example: an image or a video, on disk or in the file store, as the query ("shot like this").

The query is encoded by the source's active encoder into the pooled image features its table holds
in `image_features` (a COCO image's own; a video chunk's, pooled over its sampled frames), then ranked
by cosine against that column. Text search matches label bags with MaxSim; this compares what the
pixels look like. A video query is sampled and pooled exactly as a chunk is, so a chunk's own file
finds that chunk.

Bad input (a path that does not exist, an id the file store lacks, bytes that decode to neither an
image nor a video) is refused before any model loads, with a message that names the argument: `--like`
on the command line, `file_id` in the service.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from dlk_assets.defs.pipeline.serving import embeddings_table
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.defs.smartspaces.embedding import chunk_settings, clip_features
from dlk_assets.encoders.base import Encoder, Output
from dlk_assets.lake.files import (
    FileNotFoundInStore,
    FileStore,
    hash_file,
    parse_file_id,
)
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.media.ffmpeg import NotAVideoError, probe_video
from dlk_assets.media.frames import SampledFrame, sample_frames
from dlk_assets.media.images import CorruptImageError, decode_rgb, max_image_pixels
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.retrieval.filters import InvalidSearchInput, parse_filter
from dlk_assets.retrieval.requests import Hit, VectorSearch, check_k

FEATURES = "image_features"
CLI_ARGUMENT = "--like"


class QueryFileError(InvalidSearchInput):
    """A query that names no readable image or video, or a source it cannot search (refused before any
    model loads; the CLI exits with status 2)."""


class StoredFileMissing(QueryFileError):
    """A `file_id` the file store does not hold."""


@dataclass(frozen=True)
class QueryItem:
    """The decoded query: one image, or a video's sampled frames, and the sha256 of its bytes."""

    sha256: str
    image: Image.Image | None = None
    frames: tuple[SampledFrame, ...] = ()


def video_query_frames(resources: dict[str, Any]) -> int:
    """How many frames a video query is sampled at: as many as each video chunk is embedded from."""
    return chunk_settings(resources["smartspaces_source"])["frames_per_chunk"]


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _is_image(path: Path) -> bool:
    """Whether Pillow recognises the file's header (nothing is decoded yet). An image too large for
    Pillow counts as one, so the pixel budget refuses it rather than ffmpeg decoding it as a video."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return True
    except Image.DecompressionBombError:
        return True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def decode_query(named: str, path: Path, sha256: str, video_frames: int) -> QueryItem:
    """The file at `path` as an image (fully decoded, within the pixel budget) or, failing that, as a
    video sampled at `video_frames` frames; `QueryFileError` starting with `named` when it is neither."""
    if _is_image(path):
        try:
            return QueryItem(sha256, image=decode_rgb(path.read_bytes()))
        except CorruptImageError as exc:
            raise QueryFileError(f"{named}: {exc}") from None
    try:
        probe = probe_video(path)
    except NotAVideoError as exc:
        raise QueryFileError(f"{named}: neither an image nor a video that decodes ({_one_line(exc)})") from None
    if probe.width * probe.height > max_image_pixels():
        raise QueryFileError(f"{named}: a {probe.width}x{probe.height} video's frames are above the pixel budget of "
                             f"{max_image_pixels()} (DLK_MAX_IMAGE_PIXELS)")
    try:
        frames = sample_frames(path, video_frames, probe)
    except (ValueError, RuntimeError) as exc:  # no decodable frame; ffmpeg failed while decoding
        raise QueryFileError(f"{named}: no frame of the video decodes ({_one_line(exc)})") from None
    return QueryItem(sha256, frames=tuple(frames))


def resolve_query(argument: str, store: FileStore, work: Path, video_frames: int) -> QueryItem:
    """The query a command-line `argument` names: a file on disk when that path exists, else a `file_id`
    in the file store."""
    named = f"{CLI_ARGUMENT} {argument!r}"
    if not argument.strip():
        raise QueryFileError(f"{named}: empty; give an image or video file, or a file_id")
    path = Path(argument).expanduser()
    if path.exists():
        if not path.is_file():
            raise QueryFileError(f"{named}: not a file")
        return decode_query(named, path, hash_file(path)[0], video_frames)
    try:
        parse_file_id(argument)
    except FileNotFoundInStore:
        raise QueryFileError(f"{named}: no such file (nor a file_id)") from None
    return resolve_stored(argument, store, work, video_frames, CLI_ARGUMENT)


def resolve_stored(file_id: str, store: FileStore, work: Path, video_frames: int, label: str = "file_id") -> QueryItem:
    """The query stored under `file_id`, downloaded into `work` (its sha256 checked on the way). Never a
    path: the service takes only this, where a path would name the server's own files."""
    named = f"{label} {file_id!r}"
    try:
        stored = store.stat(parse_file_id(file_id))
    except FileNotFoundInStore:
        raise StoredFileMissing(f"{named}: no file with that id in the file store") from None
    suffix = Path(stored.filename).suffix
    local = store.download(stored.file_id, work / f"query{suffix if suffix[1:].isalnum() else ''}")
    return decode_query(named, local, stored.sha256, video_frames)


def check_source(spec: SourceSpec, label: str = CLI_ARGUMENT) -> None:
    """Refuse a source whose items are not images or video chunks (nothing there has image features)."""
    if spec.modality != "image":
        raise QueryFileError(f"{label}: search by example covers images and video chunks (coco, videos); "
                             f"{spec.name} holds text: search it with a text query")


def check_encoder(spec: SourceSpec, encoder: Encoder, label: str = CLI_ARGUMENT) -> None:
    """`ValueError` unless the encoder's table for the source holds image features to compare with."""
    if Output.IMAGE_FEATURES not in encoder.outputs or FEATURES not in {c.name for c in spec.embedder.columns(encoder)}:
        raise ValueError(f"{label}: {spec.name} is served by {encoder.name}, which makes no image features to "
                         f"compare; search by example needs an encoder that does (e.g. efficientnet-lite0)")


def checked_query(spec: SourceSpec, k: int, where: str | None, resolve: Callable[[Path], QueryItem],
                  label: str = CLI_ARGUMENT) -> QueryItem:
    """Check `k`, the filter and the source, then decode the query `resolve` opens in a scratch folder
    (the decoded pixels outlive the folder)."""
    check_k(k)
    parse_filter(where)
    check_source(spec, label)
    with tempfile.TemporaryDirectory(prefix="dlk-like-") as work:
        return resolve(Path(work))


def query_features(query: QueryItem, encoder: Encoder) -> np.ndarray:
    """The query's pooled unit features, made as the table's were: an image's own, a video's pooled
    over its sampled frames (as a chunk's)."""
    if query.image is not None:
        return np.asarray(encoder.encode_images([query.image]).features[0], dtype=np.float32)
    return clip_features(encoder, query.frames)


def search_features(table: Table, features: np.ndarray, k: int, where: str | None, select: tuple[str, ...],
                    same_sha256: str | None = None) -> list[Hit]:
    """Top-k rows by cosine of `image_features` to `features`, filtered by `where`.

    Rows holding the query's own bytes (`same_sha256`) rank first: the same image encoded in another
    batch can land a hair below a near-duplicate. A row without features (embedded before its table
    had them) is refused rather than ranked on a vector it does not have.
    """
    wanted = tuple(dict.fromkeys((*select, "sha256", FEATURES)))
    hits = table.search(VectorSearch(FEATURES, features, "vector", k, parse_filter(where), wanted))
    missing = [hit.row_key for hit in hits if not _has_features(hit.values.get(FEATURES))]
    if missing:
        raise LookupError(f"{table.schema.name}: {len(missing)} row(s) among the hits have no image features "
                          f"(embedded before the table stored them), e.g. {missing[0]}; re-embed them first")
    if same_sha256 is not None:
        hits = sorted(hits, key=lambda hit: hit.values.get("sha256") != same_sha256)  # stable: scores order the rest
    return [dataclasses.replace(hit, rank=rank, values={name: hit.values[name] for name in select if name in hit.values})
            for rank, hit in enumerate(hits, start=1)]


def _has_features(vector: Any) -> bool:
    array = np.asarray(vector, dtype=np.float32) if vector is not None else np.empty(0)
    return array.ndim == 1 and array.size > 0 and bool(np.isfinite(array).all()) and bool(np.any(array))


def search_like(spec: SourceSpec, table: Table, encoder: Encoder, query: QueryItem, k: int = 10,
                where: str | None = None, label: str = CLI_ARGUMENT) -> list[Hit]:
    """Encode the decoded query with `encoder` (the one that made `table`) and search the table with it."""
    check_encoder(spec, encoder, label)
    return search_features(table, query_features(query, encoder), k, where, spec.select(table.schema), query.sha256)


def search_served_like(spec: SourceSpec, lake: Lake, registry: ModelRegistry, store: FileStore, argument: str,
                       k: int = 10, where: str | None = None, video_frames: int = 3) -> tuple[Encoder, list[Hit]]:
    """Search what the source serves now (its active encoder's table) for items that look like the
    image or video a command-line `argument` names (a path, or a file_id in `store`). Input is checked,
    and the query decoded, before the model loads."""
    query = checked_query(spec, k, where, lambda work: resolve_query(argument, store, work, video_frames))
    encoder = registry.active(spec, lake)
    check_encoder(spec, encoder)  # before the table: a missing table is not the problem to report
    return encoder, search_like(spec, embeddings_table(spec, lake, encoder), encoder, query, k, where)
