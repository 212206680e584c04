"""COCO text-to-image search: one function for the CLI, the index preview and training slices."""

from __future__ import annotations

from dlk_assets.defs.coco.tables import embeddings_schema
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import Hit, VectorSearch

RESULT_COLUMNS = ("image_id", "file_id", "sha256", "width", "height", "labels")


def coco_embeddings_table(lake: Lake, encoder: Encoder) -> Table:
    """The embeddings table of this encoder; a clear error when it was never materialized."""
    schema = embeddings_schema(encoder)
    if not lake.exists(schema.name):
        raise LookupError(
            f"no COCO embeddings for encoder {encoder.fingerprint} yet: materialize coco_image_embeddings "
            f"(e.g. `dlk demo`) before searching"
        )
    return lake.table(schema)


def coco_text_search(table: Table, encoder: Encoder, query: str, k: int = 10, where: str | None = None) -> list[Hit]:
    """Rank images by MaxSim between the query's token vectors and each image's multi-vector."""
    if not query.strip():
        raise ValueError("query text is empty")
    vectors = encoder.encode_texts([query])[0]
    return table.search(VectorSearch("embedding", vectors, "maxsim", k, parse_filter(where), RESULT_COLUMNS))


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
    lines = ["| rank | score | image_id | file_id |", "|---|---|---|---|"]
    lines += [f"| {rank} | {score:.4f} | {image_id} | {file_id} |" for rank, score, image_id, file_id in rows]
    return "\n".join(lines)
