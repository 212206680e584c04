"""The training_slices asset: one partition per slice named in slices.yaml."""


import dagster as dg

from dlk_assets.defs.coco.assets import coco_index
from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.slices.export import MANIFEST, export_slice
from dlk_assets.defs.slices.sources import SLICE_SOURCES
from dlk_assets.defs.slices.specs import load_slices
from dlk_assets.defs.smartspaces.assets import video_index
from dlk_assets.media.images import contact_sheet_data_uri
from dlk_assets.resources import (
    FileStoreResource,
    ImageEncoderResource,
    LakeResource,
    dagster_home,
)

slice_names = dg.StaticPartitionsDefinition(sorted(load_slices()))


@dg.asset(
    partitions_def=slice_names,
    deps=[coco_index, video_index],
    group_name="slices",
    kinds={"deeplake", "pytorch"},
    code_version="2",
)
def training_slices(context: dg.AssetExecutionContext, lake: LakeResource, files: FileStoreResource,
                    image_encoder: ImageEncoderResource) -> dg.MaterializeResult:
    """The slice's top-k rows (images, or video chunks as MP4 clips) from a pinned (tagged) table version,
    exported to `$DAGSTER_HOME/slices/<name>/` with a manifest (query, mode, model fingerprint, table
    version, ranked keys, scores, sha256s)."""
    spec = load_slices()[context.partition_key]
    source = SLICE_SOURCES[spec.source]
    encoder = image_encoder.encoder()
    store = files.store()
    table = source.open_table(lake.lake(), encoder)
    out_dir = dagster_home() / "slices" / spec.name
    manifest = export_slice(spec, source, table, encoder, store, out_dir)
    items = manifest["items"]
    context.log.info(f"slice {spec.name}: {len(items)} item(s) from {manifest['table']} at version {manifest['table_version']}")
    previews = [source.preview(store, item["file_id"]) for item in items]
    return dg.MaterializeResult(metadata={
        "source": spec.source, "query": spec.query, "mode": spec.mode, "k": spec.k, "where": spec.where or "",
        "rows": len(items), "model": manifest["model_fingerprint"], "table": manifest["table"],
        "table_version": manifest["table_version"], "table_tag": manifest["table_tag"],
        "manifest": dg.MetadataValue.path(str(out_dir / MANIFEST)),
        "top_hits": dg.MetadataValue.md(markdown_table(("rank", "score", "item", "file_id"), [
            (i["rank"], i["score"], source.item_name(i), i["file_id"]) for i in items])),
        "thumbnails": dg.MetadataValue.md(f"![hits]({contact_sheet_data_uri(previews, 96)})" if previews else "no hits"),
    })
