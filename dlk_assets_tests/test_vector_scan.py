"""The in-memory search structures behind `Table.search`: exact scan, inverted file, pruned MaxSim."""

import numpy as np
import pytest

from dlk_assets.lake.appended_scan import AppendedScan, with_appended
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.maxsim_scan import MaxSimScan
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.vector_scan import VectorScan, top_k, unit_rows
from dlk_assets.retrieval.filters import parse_filter
from dlk_assets.retrieval.requests import VectorSearch


def clustered(count: int, dim: int, clusters: int, seed: int, centres_seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit_rows(np.random.default_rng(centres_seed).standard_normal((clusters, dim)).astype(np.float32))
    picked = rng.integers(0, clusters, count)
    return unit_rows(centres[picked] + 0.6 / np.sqrt(dim) * rng.standard_normal((count, dim)).astype(np.float32))


def exact(matrix: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> set[int]:
    scores = matrix @ query
    if rows is None:
        return set(top_k(scores, k).tolist())
    return set(rows[top_k(scores[rows], k)].tolist())


def test_top_k_orders_best_first_and_ties_by_position():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9], dtype=np.float32)
    best = top_k(scores, 3).tolist()
    assert best[:2] == [1, 4] and best[2] in (0, 2)
    assert top_k(scores, 10).tolist() == [1, 4, 0, 2, 3]


def test_inverted_file_is_calibrated_and_finds_the_exact_neighbours():
    matrix = clustered(6000, 32, 40, seed=1)
    queries = clustered(30, 32, 40, seed=2)
    scan = VectorScan(matrix.copy(), ivf_min_rows=1000)
    assert "inverted file" in scan.describe() and scan.recall >= 0.99
    found = [set(scan.search(q, 10).rows.tolist()) for q in queries]
    recall = np.mean([len(f & exact(matrix, q, 10)) / 10 for f, q in zip(found, queries)])
    assert recall >= 0.97
    strangers = clustered(10, 32, 40, seed=7, centres_seed=8)  # around other centres: unlike every row
    for query in strangers:
        assert set(scan.search(query, 10).rows.tolist()) == exact(matrix, query, 10)
    best = scan.search(queries[0], 5)
    np.testing.assert_allclose(best.scores, matrix[best.rows] @ queries[0], rtol=1e-5)
    assert list(best.scores) == sorted(best.scores, reverse=True)


def test_a_background_build_answers_exactly_until_the_inverted_file_takes_over():
    matrix = clustered(40_000, 32, 40, seed=11)
    scan = VectorScan(matrix.copy(), ivf_min_rows=1000, background=True)
    queries = clustered(20, 32, 40, seed=12)
    while not scan.wait_built(timeout=0):  # searches running beside the build stay exact
        query = queries[0]
        assert set(scan.search(query, 10).rows.tolist()) == exact(matrix, query, 10)
        assert scan.describe().endswith("while an inverted file is built") or scan.wait_built(timeout=0)
    assert scan.describe().startswith("inverted file over 40000 vectors")
    found = [set(scan.search(q, 10).rows.tolist()) for q in queries]
    assert np.mean([len(f & exact(matrix, q, 10)) / 10 for f, q in zip(found, queries)]) >= 0.97


def test_inverted_file_with_a_filter_returns_only_kept_rows():
    matrix = clustered(50_000, 32, 40, seed=3)
    scan = VectorScan(matrix.copy(), ivf_min_rows=1000)
    query = clustered(1, 32, 40, seed=4)[0]
    broad = np.flatnonzero(np.arange(50_000) % 5 != 0)  # probed lists, masked
    for allowed in (broad, np.arange(0, 50_000, 9973)):  # and a selective filter, scored exactly
        hits = scan.search(query, 10, allowed)
        assert set(hits.rows.tolist()) <= set(allowed.tolist())
        assert len(set(hits.rows.tolist()) & exact(matrix, query, 10, allowed)) >= min(9, len(allowed))
    stranger = clustered(1, 32, 40, seed=7, centres_seed=8)[0]  # unlike every row: one exact pass over the kept rows
    hits = scan.search(stranger, 10, broad)
    assert set(hits.rows.tolist()) == exact(matrix, stranger, 10, broad)
    np.testing.assert_allclose(hits.scores, matrix[hits.rows] @ stranger, rtol=1e-5)
    assert len(scan.search(query, 10, np.empty(0, np.int64)).rows) == 0


def test_a_filter_that_keeps_whole_clusters_still_finds_the_kept_neighbours():
    """A filter correlated with the vectors (here: half the clusters) empties the lists nearest a query;
    the inverted file scans on as far as the filter's own calibration says, further than for a filter
    that keeps as many rows independently of the vectors."""
    rng = np.random.default_rng(9)
    centres = unit_rows(rng.standard_normal((40, 32)).astype(np.float32))
    cluster = rng.integers(0, 40, 60_000)
    matrix = unit_rows(centres[cluster] + 0.6 / np.sqrt(32) * rng.standard_normal((60_000, 32)).astype(np.float32))
    scan = VectorScan(matrix.copy(), ivf_min_rows=1000)
    allowed = np.flatnonzero(cluster % 2 == 1)
    queries = unit_rows(centres[0::2][:10] + 0.6 / np.sqrt(32) * rng.standard_normal((10, 32)).astype(np.float32))
    found = [set(scan.search(q, 10, allowed).rows.tolist()) for q in queries]  # queries from excluded clusters
    recall = np.mean([len(f & exact(matrix, q, 10, allowed)) / 10 for f, q in zip(found, queries)])
    assert recall >= 0.9 and all(f <= set(allowed.tolist()) for f in found)
    independent = np.flatnonzero(rng.random(60_000) < len(allowed) / 60_000)
    scan.search(queries[0], 10, independent)
    correlated_budget, independent_budget = scan._state[0]._filter(allowed).budget, scan._state[0]._filter(independent).budget
    assert independent_budget < correlated_budget < len(allowed)


def test_data_without_clusters_is_scanned_exactly():
    matrix = unit_rows(np.random.default_rng(5).standard_normal((3000, 64)).astype(np.float32))
    scan = VectorScan(matrix.copy(), ivf_min_rows=1000)
    assert scan.recall == 1.0 and scan.describe().startswith("exact scan")
    query = matrix[7]
    assert set(scan.search(query, 10).rows.tolist()) == exact(matrix, query, 10)


def _bags(count: int, seed: int, tokens: int = 8, dim: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    topics = unit_rows(np.random.default_rng(0).standard_normal((30, dim)).astype(np.float32))
    picked = rng.integers(0, 30, count)
    return [unit_rows(topics[t] + 0.5 / np.sqrt(dim) * rng.standard_normal((tokens, dim)).astype(np.float32)) for t in picked]


def _maxsim(query: np.ndarray, bag: np.ndarray) -> float:
    return float((bag @ query.T).max(axis=0).sum())


@pytest.mark.parametrize("rows", [300, 9000])  # exact below EXACT_MAX_ROWS, pruned above it
def test_maxsim_matches_exact_scores(rows):
    bags = _bags(rows, seed=rows)
    scan = MaxSimScan((bags[i:i + 1000] for i in range(0, rows, 1000)), lambda at: [bags[i] for i in at])
    query = _bags(1, seed=99, tokens=4)[0]
    exact_scores = np.array([_maxsim(query, bag) for bag in bags])
    found = scan.search(query, 10)
    assert set(found.rows.tolist()) == set(top_k(exact_scores, 10).tolist())
    np.testing.assert_allclose(found.scores, exact_scores[found.rows], rtol=1e-5)
    allowed = np.arange(1, rows, 3)
    kept = scan.search(query, 5, allowed)
    assert set(kept.rows.tolist()) == set(allowed[top_k(exact_scores[allowed], 5)].tolist())


def test_table_search_reads_the_hits_of_the_version_it_ranked(tmp_path):
    """Rows are read back by row number: after a partition is replaced (rows deleted, numbers shifted)
    every hit still carries its own row's values, and a filter's cached row numbers are not reused."""
    schema = TableSchema("scan_versions", (Column("embedding", Kind.VECTOR, 8), Column("label", Kind.TEXT)))
    table = LocalDeepLake(tmp_path).table(schema)
    vectors = unit_rows(np.random.default_rng(6).standard_normal((40, 8)).astype(np.float32))

    def write(partition: str, start: int, end: int, tag: str):
        table.replace_partition(partition, [{"row_key": f"r{i}", "embedding": vectors[i], "label": f"{tag}{i}"}
                                            for i in range(start, end)], "rows")

    write("a", 0, 20, "first-")
    write("b", 20, 40, "first-")
    where = parse_filter("label == 'first-30'")
    assert [h.row_key for h in table.search(VectorSearch("embedding", vectors[30], "vector", 3, where, ("label",)))] == ["r30"]
    write("a", 0, 10, "second-")  # deletes 20 rows ahead of partition b's rows
    hits = table.search(VectorSearch("embedding", vectors[35], "vector", 5, None, ("label",)))
    assert hits[0].row_key == "r35" and all(h.values["label"].endswith(h.row_key[1:]) for h in hits)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    filtered = table.search(VectorSearch("embedding", vectors[30], "vector", 3, where, ("label",)))
    assert [(h.row_key, h.values["label"]) for h in filtered] == [("r30", "first-30")]
    assert table.search(VectorSearch("embedding", vectors[15], "vector", 1, parse_filter("label == 'first-15'"))) == []


@pytest.mark.parametrize("base_rows", [3000, 60_000])  # an exact scan, and an inverted file
def test_appended_rows_are_searched_beside_the_scan_built_before_them(base_rows):
    matrix = clustered(base_rows + 900, 32, 40, seed=21)
    base = VectorScan(matrix[:base_rows].copy(), ivf_min_rows=50_000)
    scan = base
    for start in range(base_rows, base_rows + 900, 300):  # three appends, each on top of the last
        scan = with_appended(scan, matrix[start:start + 300].copy())
    assert isinstance(scan, AppendedScan) and scan.base is base and scan.rows == base_rows + 900
    assert "900 vectors appended since" in scan.describe()
    queries = np.concatenate((clustered(10, 32, 40, seed=22), matrix[-5:]))  # the last: appended rows themselves
    allowed = np.flatnonzero(np.arange(len(matrix)) % 3 != 1)
    found = [(scan.search(q, 10), scan.search(q, 10, allowed)) for q in queries]
    unfiltered = np.mean([len(set(f.rows.tolist()) & exact(matrix, q, 10)) / 10 for (f, _), q in zip(found, queries)])
    filtered = np.mean([len(set(f.rows.tolist()) & exact(matrix, q, 10, allowed)) / 10 for (_, f), q in zip(found, queries)])
    assert unfiltered >= 0.97 and filtered >= 0.97
    assert all(set(f.rows.tolist()) <= set(allowed.tolist()) for _, f in found)
    assert all(base_rows + 895 + i in f.rows[:1] for i, (f, _) in enumerate(found[-5:]))
    np.testing.assert_allclose(found[0][0].scores, matrix[found[0][0].rows] @ queries[0], rtol=1e-5)


def test_appends_past_a_tenth_of_the_rows_rebuild_from_the_vectors_in_memory():
    matrix = clustered(60_000 + 25_000, 32, 40, seed=23)
    base = VectorScan(matrix[:60_000].copy(), ivf_min_rows=50_000)
    rebuilt = with_appended(with_appended(base, matrix[60_000:70_000].copy()), matrix[70_000:].copy())
    assert isinstance(rebuilt, VectorScan) and rebuilt.rows == len(matrix)
    rebuilt.wait_built()
    np.testing.assert_array_equal(rebuilt.row_ordered(), matrix)  # row order kept through the grouped matrix


def test_a_writers_own_appends_carry_its_search_over_and_a_drop_rebuilds_it(tmp_path):
    """What the writer's carried-over search answers is what a reader opening the table anew answers."""
    schema = TableSchema("scan_appends", (Column("embedding", Kind.VECTOR, 8), Column("n", Kind.INT)))
    writer = LocalDeepLake(tmp_path).table(schema)
    vectors = unit_rows(np.random.default_rng(8).standard_normal((90, 8)).astype(np.float32))

    def rows(start: int, end: int) -> list[dict]:
        return [{"row_key": f"r{i}", "embedding": vectors[i], "n": i} for i in range(start, end)]

    def answers(table, query: np.ndarray, where=None) -> list[tuple[str, float]]:
        return [(h.row_key, round(h.score, 5)) for h in table.search(VectorSearch("embedding", query, "vector", 5, where))]

    writer.append("p", rows(0, 30), "first")
    writer.search(VectorSearch("embedding", vectors[0], "vector", 1))  # builds the search of this version
    odd = parse_filter("n > 40")
    for start in (30, 45, 60):
        writer.append("p" if start < 60 else "q", rows(start, start + 15), f"append {start}")
        assert f"{start - 15} vectors appended since" in writer.describe_search("embedding")
        reader = LocalDeepLake(tmp_path).table(schema)
        for query in (vectors[start + 3], vectors[5]):
            assert answers(writer, query) == answers(reader, query)
            assert answers(writer, query, odd) == answers(reader, query, odd)
    writer.replace_partition("p", rows(0, 10), "drop rows: the next search reads the column anew")
    assert "appended" not in writer.describe_search("embedding")
    assert answers(writer, vectors[50]) == answers(LocalDeepLake(tmp_path).table(schema), vectors[50])
