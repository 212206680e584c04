"""A blocking check on every asset that writes source rows: each row key is stored once in its table.

The write lock makes a second copy impossible on one machine; this check is what notices one if a
writer ever got around it (another machine on a shared lake, a tool writing the table directly), and
blocks everything downstream of the partition until it is fixed.
"""


from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import dagster as dg

from dlk_assets.defs.pipeline.spec import SourceSpec
from dlk_assets.lake.schema import PARTITION, ROW_KEY, TableSchema


def duplicate_keys(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Row keys stored more than once, with the partitions that hold them."""
    holders: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        holders[row[ROW_KEY]].append(row[PARTITION])
    return {key: sorted(partitions) for key, partitions in holders.items() if len(partitions) > 1}


def _written_tables(spec: SourceSpec) -> list[tuple[dg.AssetsDefinition, TableSchema]]:
    # Each ingest or derived asset names its table in its definition metadata (`dagster/table_name`).
    tables = {schema.name: schema for schema in (spec.rows_table, *spec.equal_count_tables, *spec.presence_tables)}
    pairs = []
    for asset in (*spec.ingest_assets, *spec.derived_assets):
        name = asset.specs_by_key[asset.key].metadata.get("dagster/table_name")
        if name in tables:
            pairs.append((asset, tables[name]))
    return pairs


def _key_check(asset: dg.AssetsDefinition, schema: TableSchema) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=f"{schema.name}_keys_unique", blocking=True, required_resource_keys={"lake"},
                    description=f"Every row key of {schema.name} is stored once, in one partition.")
    def keys_unique(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        lake = context.resources.lake.lake()
        rows = lake.table(schema).read_where(None, (PARTITION,)) if lake.exists(schema.name) else []
        duplicates = duplicate_keys(rows)
        return dg.AssetCheckResult(passed=not duplicates, metadata={
            "rows": len(rows), "duplicated_keys": len(duplicates),
            "examples": dg.MetadataValue.json(dict(list(duplicates.items())[:10]))},
            description=(f"{len(duplicates)} row key(s) stored more than once, e.g. {next(iter(duplicates.items()))}"
                         if duplicates else None))

    return keys_unique


def build_key_checks(spec: SourceSpec) -> list[dg.AssetChecksDefinition]:
    """One blocking key-uniqueness check per table the source's ingest and derived assets write."""
    return [_key_check(asset, schema) for asset, schema in _written_tables(spec)]
