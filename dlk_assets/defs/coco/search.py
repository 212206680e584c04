"""COCO text-to-image search: one function for the CLI, the index preview and training slices."""

from __future__ import annotations

from dlk_assets.defs.coco.tables import embeddings_schema
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.retrieval.requests import Hit
from dlk_assets.retrieval.text_search import maxsim_text_search, require_table

RESULT_COLUMNS = ("image_id", "file_id", "sha256", "width", "height", "labels")


def coco_embeddings_table(lake: Lake, encoder: Encoder) -> Table:
    """The embeddings table of this encoder; a clear error when it was never materialized."""
    return require_table(lake, embeddings_schema(encoder), f"no COCO embeddings for encoder {encoder.fingerprint} yet: "
                         "materialize coco_image_embeddings (e.g. `dlk demo`) before searching")


def coco_text_search(table: Table, encoder: Encoder, query: str, k: int = 10, where: str | None = None) -> list[Hit]:
    """Rank images by MaxSim between the query's token vectors and each image's multi-vector."""
    return maxsim_text_search(table, encoder, query, k, where, RESULT_COLUMNS)


def format_hits(hits: list[Hit]) -> str:
    """A plain-text table: rank, score, image_id, file_id, labels."""
    lines = [f"{'rank':>4}  {'score':>7}  {'image_id':>9}  {'file_id':36}  labels"]
    for hit in hits:
        labels = ", ".join(label["name"] for label in hit.values.get("labels", {}).get("labels", []))
        lines.append(f"{hit.rank:>4}  {hit.score:7.4f}  {hit.values['image_id']:>9}  {hit.values['file_id']:36}  {labels}")
    if not hits:
        lines.append("  (no matches)")
    return "\n".join(lines)


def hits_markdown(rows: list[tuple[int, float, int, str]]) -> str:
    """A Markdown table of (rank, score, image_id, file_id) rows for materialization metadata."""
    return markdown_table(("rank", "score", "image_id", "file_id"), rows)
