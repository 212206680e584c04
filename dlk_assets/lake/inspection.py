"""Read-side health checks over stored tables (used by asset checks)."""

from __future__ import annotations

import numpy as np

from dlk_assets.lake.tables import Table


def vector_problems(table: Table, column: str, dim: int, limit: int = 50) -> list[str]:
    """Rows whose `column` is not a non-empty (n, dim) or (dim,) array of finite values, up to `limit`."""
    multi = table.schema.column(column).kind.value == "multi_vector"
    problems = []
    for partition in table.partition_counts():
        for row in table.read_partition(partition, (column,)):
            vectors = np.asarray(row[column])
            expected = (vectors.ndim == 2 and len(vectors) > 0) if multi else vectors.ndim == 1
            if not expected or vectors.shape[-1] != dim:
                problems.append(f"{row['row_key']}: shape {vectors.shape}, expected {'(n, ' if multi else '('}{dim})")
            elif not np.isfinite(vectors).all():
                problems.append(f"{row['row_key']}: non-finite values")
            if len(problems) >= limit:
                return problems
    return problems


def partition_count_mismatches(*counts: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Partitions whose row counts differ between tables (a partition missing from one counts as 0)."""
    partitions = sorted(set().union(*counts))
    table = {p: tuple(c.get(p, 0) for c in counts) for p in partitions}
    return {p: c for p, c in table.items() if len(set(c)) > 1}
