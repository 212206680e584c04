"""Where every row key of one table version lives: its partition and its row offset.

A writer checks each batch's keys against the whole table (a key belongs to one partition) and finds
the rows a partition replace drops, and a reader finds rows by key (a vector by its id). Asked of
the engine, each is a query over every row, so each write cost grew with the table (10k-row partitions
went from 120k to 38k rows/s between 100k and 600k rows) and reading one row by key took 50 ms at
100k rows. `KeyIndex` answers in time proportional to the keys asked, and the writer keeps it in
step with its own commits (`after_write`). It is only valid for the version it was read at: when
another process has committed since, the writer builds a new one from one pass over the key and
partition columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class KeyIndex:
    """Row keys, their partitions and their row order in one table version.

    Holds per row a key reference and a partition code (12 bytes, up to twice that while the arrays
    have room to grow) and per key a dict entry: about 100 MB per million rows with the keys themselves;
    once rows are looked up by key, a second dict entry per key (key -> row offset)."""

    def __init__(self, version: str, keys: Sequence[str], partitions: Sequence[str]):
        self.version = version
        self._names: list[str] = list(dict.fromkeys(partitions))
        self._codes = {name: code for code, name in enumerate(self._names)}
        codes = list(map(self._codes.__getitem__, partitions))
        # Row arrays with room to grow (doubling), so an append copies only the new rows.
        self._rows = len(codes)
        self._all_keys = np.empty(max(self._rows, 1024), dtype=object)
        self._all_keys[:self._rows] = keys
        self._all_codes = np.empty(len(self._all_keys), dtype=np.int32)
        self._all_codes[:self._rows] = codes
        self._partition_of: dict[str, int] = dict(zip(keys, codes))
        # key -> row offset, built on the first lookup by key; dropping rows shifts the offsets after
        # them, so a write that drops rows discards it (writers replacing partitions never build it).
        self._offset_of: dict[str, int] | None = None

    def __len__(self) -> int:
        return self._rows

    @property
    def _row_keys(self) -> np.ndarray:
        return self._all_keys[:self._rows]

    @property
    def _row_codes(self) -> np.ndarray:
        return self._all_codes[:self._rows]

    def partition_of(self, key: str) -> str | None:
        """The partition holding `key`, or None when no row has it."""
        code = self._partition_of.get(key)
        return None if code is None else self._names[code]

    def partitions_of(self, keys: Iterable[str]) -> dict[str, str]:
        """The partition of each of `keys` that some row has."""
        found = ((key, self._partition_of.get(key)) for key in keys)
        return {key: self._names[code] for key, code in found if code is not None}

    def first_clash(self, keys: Iterable[str], partition: str, same_partition_ok: bool) -> tuple[str, str] | None:
        """The first of `keys` already held by another partition (or by any, unless `same_partition_ok`),
        with its holder."""
        own = self._codes.get(partition)
        for key in keys:
            code = self._partition_of.get(key)
            if code is not None and not (same_partition_ok and code == own):
                return key, self._names[code]
        return None

    def partition_offsets(self, partition: str) -> list[int]:
        """Row offsets of the partition's rows, ascending."""
        code = self._codes.get(partition)
        return [] if code is None else np.flatnonzero(self._row_codes == code).tolist()

    def offsets_of(self, keys: Iterable[str], partition: str) -> list[int]:
        """Row offsets of those of `keys` the partition holds, ascending."""
        code = self._codes.get(partition)
        wanted = {key for key in keys if code is not None and self._partition_of.get(key) == code}
        if not wanted:
            return []
        held = np.flatnonzero(self._row_codes == code)
        return [offset for offset, key in zip(held.tolist(), self._row_keys[held].tolist()) if key in wanted]

    def row_offsets(self, keys: Iterable[str]) -> list[int]:
        """Row offsets of those of `keys` that some row has, ascending."""
        if self._offset_of is None:
            self._offset_of = dict(zip(self._row_keys.tolist(), range(self._rows)))
        found = {self._offset_of.get(key) for key in keys}
        found.discard(None)
        return sorted(found)

    def row_keys(self, partition: str) -> set[str]:
        """The keys of the partition's rows."""
        code = self._codes.get(partition)
        return set() if code is None else set(self._row_keys[self._row_codes == code].tolist())

    def after_write(self, version: str, dropped_offsets: Sequence[int], partition: str, added_keys: Sequence[str]) -> None:
        """Follow a commit that dropped the rows at `dropped_offsets` (the engine closes the gaps) and
        then appended `added_keys` to `partition`, becoming `version`."""
        if len(dropped_offsets):
            for key in self._row_keys[np.asarray(dropped_offsets)].tolist():
                del self._partition_of[key]
            kept = np.ones(self._rows, dtype=bool)
            kept[np.asarray(dropped_offsets)] = False
            remaining = int(kept.sum())
            self._all_keys[:remaining] = self._row_keys[kept]
            self._all_codes[:remaining] = self._row_codes[kept]
            self._all_keys[remaining:self._rows] = None  # let go of the dropped keys
            self._rows = remaining
            self._offset_of = None
        if len(added_keys):
            code = self._codes.setdefault(partition, len(self._codes))
            if code == len(self._names):
                self._names.append(partition)
            end = self._rows + len(added_keys)
            if end > len(self._all_keys):
                capacity = max(end, 2 * len(self._all_keys))
                self._all_keys = np.concatenate([self._row_keys, np.empty(capacity - self._rows, dtype=object)])
                self._all_codes = np.concatenate([self._row_codes, np.empty(capacity - self._rows, dtype=np.int32)])
            self._all_keys[self._rows:end] = list(added_keys)
            self._all_codes[self._rows:end] = code
            self._rows = end
            self._partition_of.update(dict.fromkeys(added_keys, code))
            if self._offset_of is not None:
                self._offset_of.update(zip(added_keys, range(end - len(added_keys), end)))
        self.version = version
