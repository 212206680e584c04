"""Write rows as a dataset folder in Hugging Face hub layout (`data/<split>-NNNNN-of-MMMMM.parquet`).

What `datasets` resolves for a hub repository is what it resolves for such a folder, so tests and
benchmarks exercise multi-file sources through the same resolution and reading code as the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def write_hub_layout(table, root: str | Path, file_rows: Sequence[int], split: str = "train",
                     row_group_size: int | None = None) -> list[Path]:
    """Write consecutive slices of the pyarrow `table` (`file_rows[i]` rows in file i) under `root/data`."""
    import pyarrow.parquet as pq

    if sum(file_rows) > table.num_rows:
        raise ValueError(f"file_rows asks for {sum(file_rows)} rows but the table has {table.num_rows}")
    folder = Path(root) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for index, rows in enumerate(file_rows):
        path = folder / f"{split}-{index:05d}-of-{len(file_rows):05d}.parquet"
        pq.write_table(table.slice(start, rows), path, row_group_size=row_group_size)
        paths.append(path)
        start += rows
    return paths
