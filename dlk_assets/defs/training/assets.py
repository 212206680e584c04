"""`slice_finetune`: a linear probe per slice, trained on the encoder's stored features of the slice's
items against items sampled from outside it, and saved under `$DAGSTER_HOME/finetune/<slice>/`."""

import time
from dataclasses import asdict

import dagster as dg

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.defs.sources import SOURCES
from dlk_assets.defs.training.partitions import (
    finetune_slices,
    slice_specs,
    sliced_sources,
)
from dlk_assets.resources import dagster_home
from dlk_assets.training.features import pinned_table, slice_probe_data
from dlk_assets.training.manifest import load_manifest, slice_manifest_path
from dlk_assets.training.probe import (
    PROBE_VERSION,
    RECORD,
    WEIGHTS,
    ProbeSettings,
    save_probe,
    train_probe,
)

FINETUNE_FOLDER = "finetune"


class FinetuneConfig(dg.Config):
    """Run config of `slice_finetune`; the same slice and settings give byte-identical weights."""

    seed: int = 0
    negatives_per_positive: int = 4
    held_out_fraction: float = 0.3
    epochs: int = 300
    learning_rate: float = 0.05
    weight_decay: float = 1e-4


def _slice_deps() -> list[dg.AssetDep]:
    """Each source's `<prefix>_slices`, partition to same-named partition: lineage runs slice -> finetune."""
    by_source: dict[str, list[str]] = {}
    for spec in slice_specs().values():
        by_source.setdefault(spec.source, []).append(spec.name)
    return [dg.AssetDep(spec.asset_name("slices"), partition_mapping=dg.StaticPartitionMapping({n: n for n in by_source[spec.name]}))
            for spec in sliced_sources() if spec.name in by_source]


@dg.asset(
    name="slice_finetune", partitions_def=finetune_slices, deps=_slice_deps(), group_name="training", kinds={"pytorch"},
    code_version=PROBE_VERSION, required_resource_keys={"lake", "models"},
    description=f"A linear probe per slice: the slice's items against items sampled (by the seed) from outside it, on "
                f"the encoder's stored features of the table version the slice pinned (`image_features` where the table "
                f"has them, else each item's multi-vector averaged), with a stratified held-out split. Saves "
                f"$DAGSTER_HOME/{FINETUNE_FOLDER}/<slice>/{WEIGHTS} (a state_dict) and {RECORD}; the same slice and "
                f"seed give byte-identical weights.",
)
def slice_finetune(context: dg.AssetExecutionContext, config: FinetuneConfig) -> dg.MaterializeResult:
    """Train and save the probe of one slice; metadata carries its loss and held-out accuracy."""
    started = time.monotonic()
    name = context.partition_key
    manifest = load_manifest(slice_manifest_path(name))
    spec = SOURCES[manifest.source]
    settings = ProbeSettings(**config.model_dump())
    table = pinned_table(manifest, spec, context.resources.lake.lake(), context.resources.models.registry())
    data, column = slice_probe_data(manifest, spec, table, settings)
    result = train_probe(data, settings)
    relative = f"{FINETUNE_FOLDER}/{name}"
    record = save_probe(dagster_home() / relative, result, {
        "slice": name, "source": spec.name, "table": manifest.table, "table_version": manifest.table_version,
        "table_tag": manifest.table_tag, "encoder": manifest.encoder, "encoder_fingerprint": manifest.encoder_fingerprint,
        "feature_column": column, "feature_dim": int(data.features.shape[1]), "seed": settings.seed,
        "settings": asdict(settings), "probe_version": PROBE_VERSION,
        "positives": int(data.labels.sum()), "negatives": int(len(data.labels) - data.labels.sum()),
    })
    context.log.info(f"slice {name}: loss {result.metrics['loss']:.4f}, held-out accuracy "
                     f"{result.metrics['held_out_accuracy']:.3f} on {len(result.held_out)} item(s)")
    return dg.MaterializeResult(metadata={
        **result.metrics, "slice": name, "source": spec.name, "seed": settings.seed, "table": manifest.table,
        "table_tag": manifest.table_tag, "encoder_fingerprint": manifest.encoder_fingerprint, "feature_column": column,
        "feature_dim": record["feature_dim"], "positives": record["positives"], "negatives": record["negatives"],
        "train_items": len(result.train_keys), "held_out_items": len(result.held_out),
        "held_out_positives": sum(h["label"] for h in result.held_out),
        "weights": dg.MetadataValue.path(f"{relative}/{WEIGHTS}"), "weights_sha256": record["weights_sha256"],
        "record": dg.MetadataValue.path(f"{relative}/{RECORD}"), "path_root": "$DAGSTER_HOME",
        "held_out": dg.MetadataValue.md(markdown_table(("row_key", "in slice", "probability"), [
            (h["row_key"], "yes" if h["label"] else "no", h["probability"]) for h in result.held_out])),
        "duration_s": round(time.monotonic() - started, 3),
    })


def training_definitions() -> dg.Definitions:
    """What training adds to the project's definitions."""
    return dg.Definitions(assets=[slice_finetune])
