"""The training_slices asset: one partition per slice named in slices.yaml."""


import dagster as dg

from dlk_assets.defs.coco.assets import coco_index
from dlk_assets.defs.coco.search import coco_embeddings_table, hits_markdown
from dlk_assets.defs.slices.export import MANIFEST, export_slice
from dlk_assets.defs.slices.specs import load_slices
from dlk_assets.media.images import thumbnail_data_uri
from dlk_assets.resources import FileStoreResource, ImageEncoderResource, LakeResource, dagster_home

slice_names = dg.StaticPartitionsDefinition(sorted(load_slices()))


@dg.asset(
    partitions_def=slice_names,
    deps=[coco_index],
    group_name="slices",
    kinds={"deeplake", "pytorch"},
    code_version="1",
)
def training_slices(context: dg.AssetExecutionContext, lake: LakeResource, files: FileStoreResource,
                    image_encoder: ImageEncoderResource) -> dg.MaterializeResult:
    """The slice's top-k rows from a pinned (tagged) table version, exported to `$DAGSTER_HOME/slices/<name>/`
    with a manifest (query, mode, model fingerprint, table version, ranked keys, scores, sha256s)."""
    spec = load_slices()[context.partition_key]
    encoder = image_encoder.encoder()
    store = files.store()
    table = coco_embeddings_table(lake.lake(), encoder)
    out_dir = dagster_home() / "slices" / spec.name
    manifest = export_slice(spec, table, encoder, store, out_dir)
    items = manifest["items"]
    thumbnails = " ".join(
        f"![{item['rank']}: {item['image_id']}]({thumbnail_data_uri(store.get(item['file_id']))})" for item in items)
    return dg.MaterializeResult(metadata={
        "query": spec.query, "mode": spec.mode, "k": spec.k, "where": spec.where or "", "rows": len(items),
        "model": manifest["model_fingerprint"], "table": manifest["table"], "table_version": manifest["table_version"],
        "table_tag": manifest["table_tag"], "manifest": dg.MetadataValue.path(str(out_dir / MANIFEST)),
        "top_hits": dg.MetadataValue.md(hits_markdown([(i["rank"], i["score"], i["image_id"], i["file_id"]) for i in items])),
        "thumbnails": dg.MetadataValue.md(thumbnails or "no hits"),
    })
