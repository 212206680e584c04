"""COCO described once: what the shared pipeline builds from (embeddings, index, checks, cutover, slices)."""

from __future__ import annotations

from dlk_assets.defs.coco.assets import coco_files, coco_images
from dlk_assets.defs.coco.embedding import embed_images, image_columns, labels_preview
from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.sensors import COCO_JOB, coco_shard_sensor
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.defs.pipeline.hits import RANK, SCORE, HitColumn, value_column
from dlk_assets.defs.pipeline.spec import (
    Embedder,
    Lineage,
    SearchSpec,
    SliceExport,
    SourceSpec,
)
from dlk_assets.defs.shard_sensors import register_all_shards
from dlk_assets.media.images import decode_rgb
from dlk_assets.retrieval.filters import Comparison
from dlk_assets.retrieval.text_search import maxsim_text_search


def _labels(hit) -> str:
    return ", ".join(label["name"] for label in hit.values.get("labels", {}).get("labels", []))


def _image_id(item: str) -> Comparison:
    try:
        return Comparison("image_id", "==", int(item.removeprefix("coco:")))
    except ValueError:
        raise ValueError(f"a COCO item is an image_id (e.g. 900002), got {item!r}") from None


COCO = SourceSpec(
    name="coco", modality="image", group="coco", asset_prefix="coco", partitions=coco_shards,
    ingest_assets=(coco_files,), ingest_job=COCO_JOB, sensors=(coco_shard_sensor,),
    register_all=lambda instance, resources: register_all_shards(instance, resources["coco_source"], coco_shards),
    rows_table=COCO_IMAGES, derived_assets=(coco_images,), equal_count_tables=(COCO_FILES,),
    embeddings_asset="coco_image_embeddings",
    embeddings_description="Image embeddings per encoder, computed from the bytes read back from the file store by "
                           "`file_id` (the path training uses): a multi-vector per image, plus pooled features and labels "
                           "where the encoder has them. Skips a shard, and says `cached`, when its vectors are current.",
    embeddings_table="coco_image_embeddings",
    copied_columns=("image_id", "width", "height", "category_ids", "file_id", "sha256", "metadata"),
    embedder=Embedder(columns=image_columns, embed=embed_images, unit="images", batch_size=16, preview=labels_preview),
    indexes=(("embedding", "pooled_quantized"),),
    search=SearchSpec(
        modes=("maxsim",), run=maxsim_text_search,
        select=("image_id", "file_id", "sha256", "width", "height", "labels"),
        columns=(RANK, SCORE, value_column("image_id", width=9, numeric=True), value_column("file_id", width=36),
                 HitColumn("labels", _labels)),
    ),
    lineage=Lineage(
        item_help="an image_id (e.g. 900002)", rows_for=_image_id, origin_table=COCO_FILES,
        origin_key=lambda row: row["row_key"],
        describe_origin=lambda row: {"dataset": row["source"], "shard": row["partition"],
                                     "stream_position": row["source_record"]["position"], "filename": row["filename"]},
        item_of=lambda hit: str(hit["image_id"]),
    ),
    slices=SliceExport(item_fields=("image_id",), item_name=lambda item: str(item["image_id"]),
                       preview=lambda store, file_id: decode_rgb(store.get(file_id))),
)

