"""Asset-check results every source's index checks share: counts that must agree, vectors that must be sane."""

import dagster as dg

from dlk_assets.lake.inspection import partition_count_mismatches, vector_problems
from dlk_assets.lake.tables import Table


def counts_agree(labels: tuple[str, ...], counts: tuple[dict[str, int], ...], unit: str = "shards",
                 extra: dict | None = None) -> dg.AssetCheckResult:
    """Passes when every partition has the same row count in each table (`labels` name the tables)."""
    bad = partition_count_mismatches(*counts)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={unit: len(counts[0]), **(extra or {}), "mismatches": dg.MetadataValue.json({p: list(c) for p, c in bad.items()})},
        description=None if not bad else f"{len(bad)} {unit} disagree ({', '.join(labels)}): {bad}",
    )


def vectors_valid(table: Table, column: str, dim: int) -> dg.AssetCheckResult:
    """Passes when every stored vector has dimension `dim` and only finite values (problems listed, up to 50)."""
    problems = vector_problems(table, column, dim)
    return dg.AssetCheckResult(passed=not problems, metadata={"rows": len(table), "problems": dg.MetadataValue.json(problems)})
