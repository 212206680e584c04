"""What a comparison may do with a column, checked once for every engine that compiles filters."""

from __future__ import annotations

from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.retrieval.filters import Comparison

FILTERABLE = (Kind.TEXT, Kind.INT, Kind.FLOAT, Kind.JSON, Kind.INT_LIST)


def filtered_column(tree: Comparison, schema: TableSchema) -> Column:
    """The column `tree` compares, once the comparison fits its kind: keys only on JSON (and always
    there), CONTAINS only on lists (and lists only with CONTAINS), HAS (array membership) only on JSON keys, text with strings, numbers with
    numbers. `ValueError` names the column otherwise."""
    column = schema.column(tree.field)
    if column.kind not in FILTERABLE:
        raise ValueError(f"column {column.name!r} ({column.kind.value}) cannot be filtered on")
    if tree.key is not None and column.kind is not Kind.JSON:
        raise ValueError(f"{tree.field}.{tree.key}: only JSON columns have keys")
    if tree.key is None and column.kind is Kind.JSON:
        raise ValueError(f"filter on JSON column {column.name!r} needs a key, e.g. {column.name}.dataset")
    if tree.op == "HAS" and (column.kind is not Kind.JSON or isinstance(tree.value, bool)):
        raise ValueError(f"HAS tests a JSON array key for a string or number; {column.name!r} is {column.kind.value}")
    if tree.op == "CONTAINS" and column.kind is not Kind.INT_LIST:
        raise ValueError(f"CONTAINS works on list columns; {column.name!r} is {column.kind.value}")
    if tree.op != "CONTAINS" and column.kind is Kind.INT_LIST:
        raise ValueError(f"list column {column.name!r} supports only CONTAINS")
    if column.kind is Kind.TEXT and not isinstance(tree.value, str):
        raise ValueError(f"column {column.name!r} is text: compare it with a 'quoted string'")
    if column.kind in (Kind.INT, Kind.FLOAT) and isinstance(tree.value, str):
        raise ValueError(f"column {column.name!r} is numeric: compare it with a number")
    return column
