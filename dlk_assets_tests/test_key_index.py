"""The key index a table writer keeps between its own commits: every write answered from it must leave
the table exactly as a model of the writes says, and agree with a reader that read the table anew."""

import random

import pytest

from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.key_index import KeyIndex
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import RowValidationError

SCHEMA = TableSchema("keyed", (Column("value", Kind.INT),))


def test_key_index_follows_drops_and_appends():
    index = KeyIndex("v1", ["a", "b", "c", "d"], ["p", "q", "p", "q"])
    assert index.partition_offsets("p") == [0, 2] and index.offsets_of(["d", "a", "zz"], "q") == [3]
    assert index.row_offsets(["d", "a", "zz"]) == [0, 3]
    assert index.first_clash(["x", "c"], "q", same_partition_ok=True) == ("c", "p")
    assert index.first_clash(["c"], "p", same_partition_ok=True) is None
    assert index.first_clash(["c"], "p", same_partition_ok=False) == ("c", "p")
    index.after_write("v2", [0, 2], "p", ["e"])  # replace partition p: drop a and c, append e
    assert index.version == "v2" and len(index) == 3
    assert index.partitions_of(["a", "b", "e"]) == {"b": "q", "e": "p"}
    assert index.partition_offsets("q") == [0, 1] and index.partition_offsets("p") == [2]
    assert index.row_offsets(["e", "d", "a"]) == [1, 2]  # offsets after the drop, not before
    index.after_write("v3", [], "r", ["f"])  # a partition the index has not seen
    assert index.row_keys("r") == {"f"} and index.partition_of("f") == "r"
    assert index.row_offsets(["f", "b"]) == [0, 3]  # appended to a lookup already built


def _stored(table) -> dict[str, tuple[str, int]]:
    return {row["row_key"]: (row["partition"], row["value"]) for row in table.read_where(None, ("partition", "value"))}


def test_writes_answered_from_the_kept_index_match_a_model_and_a_fresh_reader(tmp_path):
    writer = LocalDeepLake(tmp_path).table(SCHEMA)
    model: dict[str, tuple[str, int]] = {}
    rng = random.Random(7)
    partitions = ["p0", "p1", "p2", "p3"]
    for step in range(40):
        partition = rng.choice(partitions)
        own = sorted(k for k, (p, _) in model.items() if p == partition)
        free = [f"k{n:03d}" for n in range(60) if f"k{n:03d}" not in model]
        operation = rng.choice(["replace", "append", "upsert", "delete"])
        if operation == "replace":  # keeps some of the partition's keys, drops others, adds new ones
            keys = rng.sample(own, len(own) // 2) + rng.sample(free, min(len(free), rng.randint(0, 5)))
            writer.replace_partition(partition, [{"row_key": k, "value": step} for k in keys], f"step {step}")
            model = {k: v for k, v in model.items() if v[0] != partition} | {k: (partition, step) for k in keys}
        elif operation == "append":
            keys = rng.sample(free, min(len(free), rng.randint(1, 4)))
            writer.append(partition, [{"row_key": k, "value": step} for k in keys], f"step {step}")
            model |= {k: (partition, step) for k in keys}
        elif operation == "upsert":
            keys = rng.sample(own, min(len(own), 2)) + rng.sample(free, min(len(free), 2))
            if keys:
                writer.upsert(partition, [{"row_key": k, "value": step} for k in keys], f"step {step}")
                model |= {k: (partition, step) for k in keys}
        else:
            keys = rng.sample(own, min(len(own), 2))
            assert writer.delete_rows(partition, keys + ["never-stored"], f"step {step}") == len(keys)
            model = {k: v for k, v in model.items() if k not in keys}
        assert _stored(writer) == model, f"step {step}: {operation} {partition} {keys}"
        asked = rng.sample(sorted(model) + ["never-stored"], min(len(model) + 1, 6))  # rows by key, from the kept index
        found = writer.read_rows(asked, ("partition", "value"))
        assert {k: (r["partition"], r["value"]) for k, r in found.items()} == {k: model[k] for k in asked if k in model}
    reader = LocalDeepLake(tmp_path).table(SCHEMA)
    everything = sorted(model) + ["never-stored"]
    assert writer.partitions_of(everything) == reader.partitions_of(everything) == {k: p for k, (p, _) in model.items()}
    for partition in partitions:
        assert writer.row_keys(partition) == reader.row_keys(partition) == {k for k, (p, _) in model.items() if p == partition}


def test_a_writer_sees_what_another_writer_committed_since_its_last_write(tmp_path):
    first = LocalDeepLake(tmp_path).table(SCHEMA)
    second = LocalDeepLake(tmp_path).table(SCHEMA)
    first.replace_partition("a", [{"row_key": "x", "value": 1}], "first")
    second.replace_partition("b", [{"row_key": "y", "value": 2}], "second")
    with pytest.raises(RowValidationError, match="row 'y' already belongs to partition 'b'"):
        first.replace_partition("a", [{"row_key": "x", "value": 1}, {"row_key": "y", "value": 1}], "clash")
    second.replace_partition("a", [], "second empties a")
    first.replace_partition("c", [{"row_key": "x", "value": 3}], "x moves to c")  # free again: a was emptied
    assert _stored(LocalDeepLake(tmp_path).table(SCHEMA)) == {"y": ("b", 2), "x": ("c", 3)}
