"""Dagster's standard table metadata (row count, column schema, table name, URI) for lake tables."""

from __future__ import annotations

from typing import Any

import dagster as dg

from dlk_assets.lake.schema import Kind, TableSchema
from dlk_assets.lake.tables import Table

_TYPES = {
    Kind.TEXT: "text", Kind.INT: "int64", Kind.FLOAT: "float32", Kind.JSON: "json", Kind.INT_LIST: "int64[]",
    Kind.BOXES: "float32[n,4]",
}


def column_schema(schema: TableSchema) -> dg.TableSchema:
    """The columns as the UI shows them; vectors carry their dimension."""
    def type_of(column) -> str:
        if column.kind is Kind.VECTOR:
            return f"float32[{column.dim}]"
        if column.kind is Kind.MULTI_VECTOR:
            return f"float32[n,{column.dim}]"
        return _TYPES[column.kind]

    return dg.TableSchema(columns=[dg.TableColumn(c.name, type_of(c)) for c in schema.all_columns])


def definition_metadata(schema: TableSchema) -> dict[str, Any]:
    """What an asset's definition can say about its table before anything runs."""
    return {"dagster/table_name": schema.name, "dagster/column_schema": column_schema(schema)}


def table_metadata(table: Table, partition_rows: int | None = None) -> dict[str, Any]:
    """What a materialization says about the table it wrote: name, URI, schema, row counts."""
    metadata: dict[str, Any] = {
        "dagster/table_name": table.schema.name, "dagster/uri": table.uri, "dagster/row_count": len(table),
        "dagster/column_schema": column_schema(table.schema), "table_version": table.version,
    }
    if partition_rows is not None:
        metadata["dagster/partition_row_count"] = partition_rows
    return metadata
