"""Read a whole Deep Lake table (or one of its versions) in a child process: `python -m dlk_assets.lake.probe URL [VERSION]`.

A table whose head was half-written (a write that hit a full disk) crashes the reading process with
SIGSEGV, so the doctor never reads a suspect table in its own process: it runs this and looks at the
exit status. Prints one JSON line: rows, version and the version history (newest last).
"""

from __future__ import annotations

import json
import sys

BATCH_ROWS = 10_000


def read_everything(url: str, version: str | None = None) -> dict:
    """Touch every value of every column (in batches); return what was read."""
    import deeplake

    dataset = deeplake.open_read_only(url)
    history = [v.id for v in dataset.history]
    view = dataset.history[version].open() if version else dataset
    rows = len(view)
    for column in view.schema.columns:
        for start in range(0, rows, BATCH_ROWS):
            view[column.name][start:start + BATCH_ROWS]
    return {"rows": rows, "version": version or str(dataset.version), "history": history}


if __name__ == "__main__":
    print(json.dumps(read_everything(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)))
