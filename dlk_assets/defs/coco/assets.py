"""COCO assets: raw bytes into the file store, typed image rows, multi-vector embeddings, the index."""


import time

import dagster as dg

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.rows import embedding_row, file_row, image_row
from dlk_assets.defs.coco.search import RESULT_COLUMNS, coco_text_search, hits_markdown
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES, embeddings_schema
from dlk_assets.defs.gpu import GPU_OP_TAGS, GPU_POOL
from dlk_assets.encoders.efficientnet_labels import EfficientNetLabelEncoder
from dlk_assets.media.images import decode_rgb, inspect_image
from dlk_assets.profile import configured_encoder_fingerprint
from dlk_assets.resources import (
    CocoSourceResource,
    FileStoreResource,
    ImageEncoderResource,
    LakeResource,
)
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets.sources.coco import shard_index

INDEX_PREVIEW_QUERY = "a cat"


def _skipped_markdown(skipped) -> str:
    rows = "\n".join(f"| {s.position} | {s.item} | {s.reason.replace('|', '/')} |" for s in skipped)
    return "| position | item | reason |\n|---|---|---|\n" + rows


@dg.asset(
    partitions_def=coco_shards,
    group_name="coco",
    kinds={"deeplake", "huggingface"},
    code_version="1",
)
def coco_files(context: dg.AssetExecutionContext, coco_source: CocoSourceResource, lake: LakeResource,
               files: FileStoreResource) -> dg.MaterializeResult:
    """The shard's original image bytes in the file store (content-addressed `file_id` + sha256), and one
    `coco_files` row per image with its annotation as it arrived. Bad items are skipped and listed."""
    started = time.perf_counter()
    stream = coco_source.stream()
    shard = stream.read_shard(shard_index(context.partition_key), coco_source.shard_size, coco_source.on_bad_record)
    store = files.store()
    rows, total_bytes = [], 0
    for record in shard.records:
        info = inspect_image(record.image_bytes)
        stored = store.put(record.image_bytes, f"coco_{record.image_id}.{info.extension}", info.content_type)
        rows.append(file_row(record, stored, stream.label, context.run_id))
        total_bytes += stored.size
    for skipped in shard.skipped:
        context.log.warning(f"{context.partition_key}: skipped {skipped.item}: {skipped.reason}")
    write = lake.lake().table(COCO_FILES).replace_partition(context.partition_key, rows, f"coco_files {context.partition_key} run {context.run_id}")
    metadata = {
        "files": len(rows), "bytes": total_bytes, "skipped": len(shard.skipped),
        "rows_replaced": write.rows_replaced, "table_version": write.version, "source": stream.label,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if shard.skipped:
        metadata["skipped_items"] = dg.MetadataValue.md(_skipped_markdown(shard.skipped))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=coco_shards,
    deps=[coco_files],
    group_name="coco",
    kinds={"deeplake"},
    code_version="1",
)
def coco_images(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Typed image rows: image_id, width, height, COCO [x, y, w, h] boxes, category ids, file_id, sha256,
    metadata and lineage, keyed `coco:<image_id>`."""
    tables = lake.lake()
    source_rows = tables.table(COCO_FILES).read_partition(context.partition_key)
    rows = [image_row(row, context.run_id) for row in source_rows]
    write = tables.table(COCO_IMAGES).replace_partition(context.partition_key, rows, f"coco_images {context.partition_key} run {context.run_id}")
    categories = sorted({name for row in rows for name in row["metadata"]["categories"]})
    return dg.MaterializeResult(metadata={
        "rows": len(rows), "boxes": sum(len(r["bboxes"]) for r in rows),
        "categories": ", ".join(categories) or "none", "rows_replaced": write.rows_replaced,
        "table_version": write.version,
    })


def _labels_markdown(rows) -> str:
    lines = ["| image_id | labels |", "|---|---|"]
    for row in rows:
        labels = ", ".join(f"{l['name']} ({l['probability']:.2f})" for l in row["labels"]["labels"])
        lines.append(f"| {row['image_id']} | {labels} |")
    return "\n".join(lines)


@dg.asset(
    partitions_def=coco_shards,
    deps=[coco_images],
    group_name="coco",
    kinds={"deeplake", "pytorch"},
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    code_version=configured_encoder_fingerprint(),
)
def coco_image_embeddings(context: dg.AssetExecutionContext, lake: LakeResource, files: FileStoreResource,
                          image_encoder: ImageEncoderResource) -> dg.MaterializeResult:
    """Multi-vector image embeddings, computed from the bytes read back from the file store by `file_id`
    (the path training uses). Skips the shard, and says `cached`, when the same images already have
    vectors from the same encoder."""
    encoder = image_encoder.encoder()
    tables = lake.lake()
    images = tables.table(COCO_IMAGES).read_partition(context.partition_key)
    table = tables.table(embeddings_schema(encoder))
    existing = table.read_partition(context.partition_key, ("sha256", "model"))
    wanted = {(r["row_key"], r["sha256"], encoder.fingerprint) for r in images}
    if images and wanted == {(r["row_key"], r["sha256"], r["model"]) for r in existing}:
        context.log.info(f"{context.partition_key}: {len(images)} embeddings already current for {encoder.fingerprint}")
        return dg.MaterializeResult(metadata={"cached": True, "rows": len(images), "model": encoder.fingerprint, "table": table.schema.name})
    started = time.perf_counter()
    store = files.store()
    pictures = [decode_rgb(store.get(row["file_id"])) for row in images]
    context.log.info(f"{context.partition_key}: encoding {len(pictures)} images with {encoder.fingerprint}")
    if isinstance(encoder, EfficientNetLabelEncoder):
        bags, features, labels = encoder.encode_images_with_labels(pictures)
    else:
        bags, features, labels = encoder.encode_images(pictures), [None] * len(pictures), [[] for _ in pictures]
    encode_seconds = time.perf_counter() - started
    rows = [embedding_row(image, bag, encoder.fingerprint, label, context.run_id, feature)
            for image, bag, label, feature in zip(images, bags, labels, features)]
    write = table.replace_partition(context.partition_key, rows, f"embeddings {context.partition_key} {encoder.fingerprint} run {context.run_id}")
    return dg.MaterializeResult(metadata={
        "cached": False, "rows": len(rows), "model": encoder.fingerprint, "dim": encoder.dim,
        "device": getattr(encoder, "device", "n/a"), "table": table.schema.name, "table_version": write.version,
        "vectors": sum(len(b) for b in bags), "encode_seconds": round(encode_seconds, 3),
        "images_per_second": round(len(rows) / encode_seconds, 2) if encode_seconds and rows else 0.0,
        "labels": dg.MetadataValue.md(_labels_markdown(rows)) if rows else "none",
    })


@dg.asset(
    deps=[coco_image_embeddings],
    group_name="coco",
    kinds={"deeplake"},
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
)
def coco_index(context: dg.AssetExecutionContext, lake: LakeResource, image_encoder: ImageEncoderResource) -> dg.MaterializeResult:
    """A pooled_quantized (MaxSim) index on the embeddings' multi-vector column, with the query plan and a
    preview search in the metadata."""
    encoder = image_encoder.encoder()
    table = lake.lake().table(embeddings_schema(encoder))
    created = table.create_index("embedding", "pooled_quantized")
    probe = VectorSearch("embedding", encoder.encode_texts([INDEX_PREVIEW_QUERY])[0], "maxsim", 5, None, RESULT_COLUMNS)
    plan = table.explain(probe)
    hits = coco_text_search(table, encoder, INDEX_PREVIEW_QUERY, k=5)
    context.log.info(f"index on {table.schema.name}.embedding {'created' if created else 'already present'}; plan: {plan.splitlines()[0]}")
    return dg.MaterializeResult(metadata={
        "table": table.schema.name, "rows": len(table), "partitions": len(table.partition_counts()),
        "index": "pooled_quantized on embedding", "created_now": created, "table_version": table.version,
        "model": encoder.fingerprint, "query_plan": dg.MetadataValue.md(f"```\n{plan}\n```"),
        f"top_hits_{INDEX_PREVIEW_QUERY.replace(' ', '_')}": dg.MetadataValue.md(
            hits_markdown([(h.rank, h.score, h.values["image_id"], h.values["file_id"]) for h in hits])),
    })


coco_shard_job = dg.define_asset_job(
    "coco_shard_job",
    selection=dg.AssetSelection.assets(coco_files, coco_images, coco_image_embeddings),
    partitions_def=coco_shards,
    description="Ingest one COCO shard: files, image rows and embeddings.",
)
