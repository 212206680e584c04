"""Text-to-clip search over chunk embeddings: for the CLI, the index preview and training slices."""

from __future__ import annotations

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.smartspaces.tables import chunk_embeddings_schema
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.retrieval.requests import Hit
from dlk_assets.retrieval.text_search import maxsim_text_search, require_table

RESULT_COLUMNS = ("video_id", "scene_name", "camera_id", "chunk_index", "start_s", "end_s", "file_id", "sha256", "frames")


def chunk_embeddings_table(lake: Lake, encoder: Encoder) -> Table:
    """The chunk-embeddings table of this encoder; a clear error when it was never materialized."""
    return require_table(lake, chunk_embeddings_schema(encoder), f"no video chunk embeddings for encoder {encoder.fingerprint} "
                         "yet: materialize video_chunk_embeddings (e.g. `dlk demo`) before searching")


def video_text_search(table: Table, encoder: Encoder, query: str, k: int = 10, where: str | None = None) -> list[Hit]:
    """Rank chunks by MaxSim: each query token against the chunk's best frame vector."""
    return maxsim_text_search(table, encoder, query, k, where, RESULT_COLUMNS)


def frame_labels(hit: Hit) -> str:
    """The distinct labels the chunk's frames were given, most confident first."""
    best: dict[str, float] = {}
    for frame in hit.values.get("frames", {}).get("frames", []):
        for label in frame.get("labels", []):
            best[label["name"]] = max(best.get(label["name"], 0.0), label["probability"])
    return ", ".join(sorted(best, key=lambda name: -best[name])[:4])


def format_clip_hits(hits: list[Hit]) -> str:
    """A plain-text table: rank, score, video, chunk, start/end seconds, file_id, frame labels."""
    lines = [f"{'rank':>4}  {'score':>7}  {'video_id':28}  {'chunk':>5}  {'start_s':>7}  {'end_s':>7}  {'file_id':36}  labels"]
    for hit in hits:
        v = hit.values
        lines.append(f"{hit.rank:>4}  {hit.score:7.4f}  {v['video_id']:28}  {v['chunk_index']:>5}  {v['start_s']:7.2f}  "
                     f"{v['end_s']:7.2f}  {v['file_id']:36}  {frame_labels(hit)}")
    if not hits:
        lines.append("  (no matches)")
    return "\n".join(lines)


def clip_hits_markdown(hits: list[Hit]) -> str:
    """The same table in Markdown, for materialization metadata."""
    return markdown_table(("rank", "score", "video_id", "chunk", "start_s", "end_s", "labels"), [
        (h.rank, h.score, h.values["video_id"], h.values["chunk_index"], h.values["start_s"], h.values["end_s"], frame_labels(h))
        for h in hits])
