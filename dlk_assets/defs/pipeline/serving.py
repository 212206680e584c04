"""Open a source's per-model tables and search them as they are served (CLI, previews, slices, gate)."""

from __future__ import annotations

from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.schema import Column, TableSchema
from dlk_assets.lake.tables import Lake, Table, require_table
from dlk_assets.models.catalog import names_for
from dlk_assets.models.registry import ModelRegistry
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import Hit, check_k, check_query_text


def open_existing(lake: Lake, name: str, columns: tuple[Column, ...] = ()) -> Table:
    """A table that must exist, opened by name for what every table has (keys, partitions, versions)
    and the `columns` the caller knows it holds."""
    return require_table(lake, TableSchema(name, columns), "it was listed a moment ago; was it just removed?")


def embeddings_table(spec: SourceSpec, lake: Lake, encoder: Encoder) -> Table:
    """The encoder's embeddings table for the source; a clear error when it was never materialized."""
    return require_table(lake, spec.embeddings_schema(encoder), f"{encoder.name} has not embedded {spec.name}: "
                         f"materialize {spec.embeddings_asset} (e.g. `dlk demo`) first")


def model_tables(spec: SourceSpec, lake: Lake) -> list[str]:
    """Every per-model embeddings table the source has, whichever encoder made it."""
    prefix = f"{spec.embeddings_table}__"
    return [name for name in lake.table_names() if name.startswith(prefix)]


def check_search_input(query: str, k: int, where: str | None) -> None:
    """Refuse an empty or oversized query, a `k` outside 1..MAX_K, or a filter that breaks a limit."""
    check_query_text(query)
    check_k(k)
    parse_filter(where)


def search_table(spec: SourceSpec, table: Table, encoder: Encoder, query: str, mode: str | None = None, k: int = 10,
                 where: str | None = None) -> list[Hit]:
    """Run a query on one of the source's tables in one of its modes (the default mode when None)."""
    mode = mode or spec.search.modes[0]
    if mode not in spec.search.modes:
        raise ValueError(f"{spec.name} searches with {', '.join(spec.search.modes)}, not {mode!r}")
    check_search_input(query, k, where)
    return spec.search.run(table, encoder, query, mode, k, where, spec.select(table.schema))


def search_served(spec: SourceSpec, lake: Lake, registry: ModelRegistry, query: str, mode: str | None = None, k: int = 10,
                  where: str | None = None) -> tuple[Encoder, list[Hit]]:
    """Search what the source serves now: its active encoder's table. Bad input is refused before any
    model loads (`InvalidSearchInput`)."""
    check_search_input(query, k, where)
    encoder = registry.active(spec, lake)
    return encoder, search_table(spec, embeddings_table(spec, lake, encoder), encoder, query, mode, k, where)


def model_names(spec: SourceSpec, registry: ModelRegistry) -> dict[str, str]:
    """Per-model table name -> encoder name, for the encoders of the source's modality buildable here."""
    names = {}
    for name in names_for(spec.modality):
        try:
            names[spec.embeddings_table_name(registry.encoder(name).fingerprint)] = name
        except Exception:  # noqa: BLE001,S112 (an encoder this machine cannot build is simply not named)
            continue
    return names


def served_table_name(spec: SourceSpec, lake: Lake, registry: ModelRegistry) -> str:
    """The per-model table that serves the source: the last cutover's, or the target's before any."""
    record = registry.active_record(spec, lake)
    return record.embeddings_table if record else spec.embeddings_table_name(registry.target(spec).fingerprint)


def served_encoder(spec: SourceSpec, registry: ModelRegistry, lake: Lake) -> Encoder:
    """What the index and its checks look after: the active model, or the target when none is installed."""
    return registry.installed_active(spec, lake) or registry.target(spec)


def serving_table(spec: SourceSpec, registry: ModelRegistry, lake: Lake) -> tuple[Encoder, Table]:
    """The served encoder and its table (which must exist)."""
    encoder = served_encoder(spec, registry, lake)
    return encoder, embeddings_table(spec, lake, encoder)
