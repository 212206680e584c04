"""COCO ingest assets: raw bytes into the file store, then typed image rows (embeddings follow from `spec`)."""

import time

import dagster as dg

from dlk_assets.defs.coco.partitions import coco_shards
from dlk_assets.defs.coco.rows import coco_row_key, file_row, image_row
from dlk_assets.defs.coco.tables import COCO_FILES, COCO_IMAGES
from dlk_assets.defs.pipeline.automation import FOLLOW_UPSTREAM
from dlk_assets.defs.pipeline.derived_rows import replace_derived_partitions
from dlk_assets.defs.pipeline.ingest_safety import (
    IngestConfig,
    replace_ingested_partition,
    skip_claimed_elsewhere,
    skipped_metadata,
)
from dlk_assets.defs.pipeline.run_context import dagster_run_id
from dlk_assets.defs.pipeline.table_metadata import definition_metadata, table_metadata
from dlk_assets.defs.pipeline.versions import rows_version
from dlk_assets.resources import CocoSourceResource, FileStoreResource, LakeResource
from dlk_assets.sources.coco import shard_index


@dg.asset(
    partitions_def=coco_shards,
    group_name="coco",
    kinds={"deeplake", "huggingface"},
    code_version="2",
    metadata=definition_metadata(COCO_FILES),
)
def coco_files(context: dg.AssetExecutionContext, config: IngestConfig, coco_source: CocoSourceResource,
               lake: LakeResource, files: FileStoreResource) -> dg.MaterializeResult:
    """The shard's original image bytes in the file store (content-addressed `file_id` + sha256), and one
    `coco_files` row per image with its annotation as it arrived. Bad items (undecodable, or above the
    pixel budget) are skipped and listed; a repeated image_id keeps its first copy, in this shard or
    another. A re-run that would store fewer images because items were skipped fails and keeps the
    stored rows unless run config sets `allow_shrink`. The data version is the shard's content (keys and
    sha256s): the same bytes never mark anything stale."""
    started = time.perf_counter()
    run_id = dagster_run_id(context)
    stream = coco_source.stream()
    shard = stream.read_shard(shard_index(context.partition_key), coco_source.shard_size, coco_source.on_bad_record,
                              coco_source.max_image_pixels)
    table = lake.lake().table(COCO_FILES)
    records, claimed = skip_claimed_elsewhere(table, context.partition_key, shard.records, lambda r: coco_row_key(r.image_id),
                                              lambda r: (r.position, f"image_id {r.image_id}"))
    skipped = [*shard.skipped, *claimed]
    store = files.store()
    rows, total_bytes = [], 0
    for record in records:
        stored = store.put(record.image_bytes, f"coco_{record.image_id}.{record.image.extension}", record.image.content_type)
        rows.append(file_row(record, stored, stream.label, run_id))
        total_bytes += stored.size
    for item in skipped:
        context.log.warning(f"{context.partition_key}: skipped {item.item}: {item.reason}")
    write = replace_ingested_partition(table, context.partition_key, rows, skipped,
                                       f"coco_files {context.partition_key} run {run_id}", config.allow_shrink)
    metadata = {
        **table_metadata(table, len(rows)), "files": len(rows), "bytes": total_bytes, **skipped_metadata(skipped),
        "rows_replaced": write.rows_replaced, "source": stream.label, "seconds": round(time.perf_counter() - started, 3),
    }
    return dg.MaterializeResult(metadata=metadata, data_version=rows_version(rows))


@dg.asset(
    partitions_def=coco_shards,
    deps=[coco_files],
    group_name="coco",
    kinds={"deeplake"},
    code_version="2",
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=FOLLOW_UPSTREAM,
    metadata=definition_metadata(COCO_IMAGES),
)
def coco_images(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Typed image rows: image_id, width, height, COCO [x, y, w, h] boxes, category ids, file_id, sha256,
    metadata and lineage, keyed `coco:<image_id>`. Reads only the lake, so one run handles a whole
    partition range in a backfill."""
    return replace_derived_partitions(context, lake.lake(), COCO_FILES, COCO_IMAGES, image_row, lambda rows: {
        "boxes": sum(len(r["bboxes"]) for r in rows),
        "categories": ", ".join(sorted({name for r in rows for name in r["metadata"]["categories"]})) or "none"})
