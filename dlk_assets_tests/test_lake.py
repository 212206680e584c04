"""The storage layer on real local backends: a Deep Lake dataset and the content-addressed file store."""

import numpy as np
import pytest

from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.files import FileNotFoundInStore
from dlk_assets.lake.local_files import LocalFileStore
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import RowValidationError
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import VectorSearch

SCHEMA = TableSchema("things", (Column("width", Kind.INT), Column("embedding", Kind.MULTI_VECTOR, 8)))


def unit_rows(seed, keys):
    rng = np.random.default_rng(seed)
    out = []
    for i, key in enumerate(keys):
        vectors = rng.standard_normal((3, 8)).astype(np.float32)
        out.append({"row_key": key, "width": 100 * (i + 1), "embedding": vectors / np.linalg.norm(vectors, axis=1, keepdims=True)})
    return out


def test_file_store_is_content_addressed_and_round_trips(tmp_path):
    store = LocalFileStore(tmp_path)
    first = store.put(b"hello", "a.txt", "text/plain")
    again = store.put(b"hello", "other-name.txt", "text/plain")
    other = store.put(b"world", "a.txt", "text/plain")
    assert first.file_id == again.file_id != other.file_id
    assert store.get(first.file_id) == b"hello" and b"".join(store.stream(first.file_id, 2)) == b"hello"
    assert first.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_put_file_streams_to_the_same_content_address_as_put(tmp_path):
    store = LocalFileStore(tmp_path / "store")
    source = tmp_path / "video.mp4"
    source.write_bytes(np.random.default_rng(0).bytes(20 << 20 | 12345))  # larger than one 8 MiB copy chunk
    streamed = store.put_file(source, "video.mp4", "video/mp4")
    in_memory = store.put(source.read_bytes(), "video.mp4", "video/mp4")
    assert streamed == in_memory and streamed.size == source.stat().st_size
    assert store.put_file(source, "again.mp4", "video/mp4").file_id == streamed.file_id
    target = store.download(streamed.file_id, tmp_path / "back.mp4")
    assert target.read_bytes() == source.read_bytes()
    assert not list((tmp_path / "store").rglob(".tmp-*"))  # no staging file left behind
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="no bytes"):
        store.put_file(tmp_path / "empty.mp4", "empty.mp4", "video/mp4")
    with pytest.raises(ValueError, match="not a file"):
        store.put_file(tmp_path, "folder.mp4", "video/mp4")
    assert not list((tmp_path / "store").rglob(".tmp-*"))


@pytest.mark.parametrize("file_id", ["../../etc/passwd", "/etc/passwd", "..", "00000000-0000-0000-0000-000000000000"])
def test_file_store_never_resolves_paths_outside_itself(tmp_path, file_id):
    with pytest.raises(FileNotFoundInStore):
        LocalFileStore(tmp_path / "store").get(file_id)


def test_file_store_keeps_names_out_of_paths_and_detects_corruption(tmp_path):
    store = LocalFileStore(tmp_path)
    stored = store.put(b"data", "../../escape.bin", "application/octet-stream")
    assert stored.filename == "escape.bin" and not (tmp_path.parent / "escape.bin").exists()
    blob = next((tmp_path / "blobs").rglob(stored.sha256))
    blob.write_bytes(b"DATA")
    with pytest.raises(OSError, match="corrupt"):
        store.get(stored.file_id)
    with pytest.raises(ValueError, match="no bytes"):
        store.put(b"", "empty.bin", "application/octet-stream")


def test_replace_partition_is_idempotent_and_scoped(tmp_path):
    table = LocalDeepLake(tmp_path).table(SCHEMA)
    table.replace_partition("p0", unit_rows(0, ["a", "b"]), "first")
    table.replace_partition("p1", unit_rows(1, ["c"]), "first")
    write = table.replace_partition("p0", unit_rows(0, ["a", "b"]), "again")
    assert write.rows_replaced == 2 and table.partition_counts() == {"p0": 2, "p1": 1} and len(table) == 3
    table.replace_partition("p0", unit_rows(2, ["a"]), "shrink")
    assert [r["row_key"] for r in table.read_partition("p0")] == ["a"]
    assert table.read_rows(["c", "zz"], ("width",)) == {"c": {"row_key": "c", "width": 100}}


def test_bad_rows_never_touch_stored_data(tmp_path):
    table = LocalDeepLake(tmp_path).table(SCHEMA)
    table.replace_partition("p0", unit_rows(0, ["a", "b"]), "good")
    before = table.version
    bad = unit_rows(3, ["a", "b"])
    bad[1]["embedding"][0, 0] = np.nan
    with pytest.raises(RowValidationError, match="row 'b', column 'embedding'.*non-finite"):
        table.replace_partition("p0", bad, "bad")
    wrong_dim = unit_rows(3, ["a"])
    wrong_dim[0]["embedding"] = np.ones((2, 7), np.float32)
    with pytest.raises(RowValidationError, match="dimension 7"):
        table.replace_partition("p0", wrong_dim, "bad")
    with pytest.raises(RowValidationError, match="already belongs to partition 'p0'"):
        table.replace_partition("p1", unit_rows(0, ["a"]), "steal")
    assert table.version == before and table.partition_counts() == {"p0": 2}
    np.testing.assert_allclose(table.read_rows(["b"])["b"]["embedding"], unit_rows(0, ["a", "b"])[1]["embedding"])


def test_ragged_bags_and_nested_json_round_trip_exactly(tmp_path):
    schema = TableSchema("bags", (Column("metadata", Kind.JSON), Column("embedding", Kind.MULTI_VECTOR, 8)))
    rng = np.random.default_rng(4)
    rows = [{"row_key": f"k{n}", "metadata": {"labels": ["cat", None], "n": n, "nested": [[1, None], {"é": None}]},
             "embedding": rng.standard_normal((n, 8)).astype(np.float32)} for n in (1, 5, 2, 3)]
    table = LocalDeepLake(tmp_path).table(schema)
    table.replace_partition("p0", rows, "ragged")
    stored = table.read_rows([r["row_key"] for r in rows])
    for row in rows:
        assert stored[row["row_key"]]["metadata"] == row["metadata"]  # a dict handed over would lose the Nones
        np.testing.assert_array_equal(stored[row["row_key"]]["embedding"], row["embedding"])
    # The JSON text is stored as a real Dict: its keys filter like any other.
    assert [r["row_key"] for r in table.read_where(parse_filter("metadata.n >= 3"), ("metadata",))] == ["k3", "k5"]
    assert len(table.read_where(parse_filter("metadata.n = 2 AND metadata.missing = 'x'"))) == 0


def test_maxsim_search_uses_the_index_filters_and_matches_exact_scores(tmp_path):
    table = LocalDeepLake(tmp_path).table(SCHEMA)
    rows = unit_rows(5, [f"k{i:02d}" for i in range(30)])
    table.replace_partition("p0", rows, "rows")
    assert table.create_index("embedding", "pooled_quantized") is True
    assert table.create_index("embedding", "pooled_quantized") is False
    assert table.indexes() == {"embedding": "pooled_quantized"}
    query = np.random.default_rng(9).standard_normal((2, 8)).astype(np.float32)
    search = VectorSearch("embedding", query, "maxsim", 5, parse_filter("width >= 1000"), ("width",))
    assert "Index Scan" in table.explain(search)
    hits = table.search(search)
    unit_query = query / np.linalg.norm(query, axis=1, keepdims=True)
    exact = sorted(((float((unit_query @ r["embedding"].T).max(axis=1).sum()), r["row_key"]) for r in rows if r["width"] >= 1000), reverse=True)[:5]
    assert [h.row_key for h in hits] == [key for _, key in exact]
    np.testing.assert_allclose([h.score for h in hits], [score for score, _ in exact], rtol=1e-4)
    assert all(h.values["width"] >= 1000 for h in hits) and [h.rank for h in hits] == [1, 2, 3, 4, 5]


def test_tags_pin_a_version_that_later_writes_do_not_change(tmp_path):
    table = LocalDeepLake(tmp_path).table(SCHEMA)
    table.replace_partition("p0", unit_rows(0, ["a", "b"]), "v1")
    version = table.tag_version("pinned")
    assert table.tag_version("pinned") == version
    table.replace_partition("p1", unit_rows(1, ["c"]), "v2")
    pinned = table.open_tag("pinned")
    assert pinned.partition_counts() == {"p0": 2} and table.partition_counts() == {"p0": 2, "p1": 1}
    with pytest.raises(PermissionError):
        pinned.replace_partition("p0", [], "no")
    with pytest.raises(KeyError, match="no tag"):
        table.open_tag("missing")


def test_pooled_quantized_needs_a_multiple_of_eight(tmp_path):
    table = LocalDeepLake(tmp_path).table(TableSchema("odd", (Column("embedding", Kind.MULTI_VECTOR, 6),)))
    with pytest.raises(ValueError, match="divisible by 8"):
        table.create_index("embedding", "pooled_quantized")
