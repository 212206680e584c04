"""What a probe trains on: the encoder's stored vectors for a slice's items and for items outside it,
read from the table version the slice pinned (its tag), so a later write to the table changes nothing.

The features are the ones the embeddings already hold, so training runs no encoder: `image_features`
(the encoder's pooled visual features) where the pinned version holds them for every row read, as
tables written by the EfficientNet encoders do, and otherwise each item's multi-vector averaged into
one unit vector (a label or frame bag; ColQwen3's token bag).
"""

from __future__ import annotations

import numpy as np

from dlk_assets.defs.pipeline.serving import embeddings_table
from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.lake.schema import PARTITION, ROW_KEY
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.training.manifest import SliceManifest
from dlk_assets.training.probe import (
    ProbeData,
    ProbeSettings,
    pooled_feature,
    sample_negatives,
)

IMAGE_FEATURES = "image_features"


def read_features(spec: SourceSpec, table: Table, keys: list[str]) -> tuple[np.ndarray, str]:
    """One unit vector per key, in order, and the column it came from: `image_features` when the pinned
    version holds a non-zero one for every key, else the source's vector column pooled per row."""
    if IMAGE_FEATURES in table.schema.column_names:
        try:
            rows = table.read_rows(keys, (IMAGE_FEATURES,))
        except Exception:  # noqa: BLE001 (the engine's error when the pinned version predates the column)
            rows = {}
        vectors = [rows[key][IMAGE_FEATURES] for key in keys if key in rows]
        # A column added after these rows were written reads back empty or zero for them: not features.
        if len(vectors) == len(keys) and all(np.size(v) and np.any(v) for v in vectors):
            return np.stack([pooled_feature(v) for v in vectors]), IMAGE_FEATURES
    column = spec.vector_column
    rows = table.read_rows(keys, (column,))
    return np.stack([pooled_feature(rows[key][column]) for key in keys]), column


def pinned_table(manifest: SliceManifest, spec: SourceSpec, lake: Lake, registry: ModelRegistry) -> Table:
    """The embeddings table at the version the slice's tag pins, opened for the encoder that exported it."""
    encoder = registry.encoder(manifest.encoder)
    if encoder.fingerprint != manifest.encoder_fingerprint:
        raise ValueError(f"slice {manifest.name!r} was exported with {manifest.encoder} {manifest.encoder_fingerprint}, but "
                         f"{manifest.encoder} here is {encoder.fingerprint}: re-materialize {spec.asset_name('slices')} for it")
    table = embeddings_table(spec, lake, encoder)
    if table.schema.name != manifest.table:
        raise ValueError(f"slice {manifest.name!r} pins table {manifest.table}, but its encoder's table is {table.schema.name}")
    return table.open_tag(manifest.table_tag)


def slice_probe_data(manifest: SliceManifest, spec: SourceSpec, table: Table, settings: ProbeSettings) -> tuple[ProbeData, str]:
    """The slice's items (label 1) and `negatives_per_positive` times as many other rows of `table`
    (label 0, chosen by the seed), with their features; and the feature column used."""
    positives = list(dict.fromkeys(item["row_key"] for item in manifest.items))
    everything = [row[ROW_KEY] for row in table.read_where(None, (PARTITION,))]
    missing = sorted(set(positives) - set(everything))
    if missing:
        raise ValueError(f"slice {manifest.name!r}: {len(missing)} item(s) are not in {manifest.table} at tag "
                         f"{manifest.table_tag}: {', '.join(missing[:5])}")
    negatives = sample_negatives(everything, set(positives), settings.negatives_per_positive * len(positives), settings.seed)
    keys = positives + negatives
    features, column = read_features(spec, table, keys)
    labels = np.array([1] * len(positives) + [0] * len(negatives), dtype=np.int64)
    return ProbeData(tuple(keys), features, labels), column
