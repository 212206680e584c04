"""Pure units: boxes, shard keys, filters and their TQL, vector/row validation, fingerprints."""

import math

import numpy as np
import pytest

from dlk_assets.encoders.base import make_fingerprint
from dlk_assets.encoders.efficientnet_labels import confident_labels, imagenet_classes
from dlk_assets.lake.json_text import compact_json
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.lake.validation import (
    RowValidationError,
    validate_rows,
    validate_vector,
)
from dlk_assets.retrieval.filters import (
    BoolOp,
    Comparison,
    FilterSyntaxError,
    parse_filter,
)
from dlk_assets.retrieval.requests import VectorSearch
from dlk_assets.retrieval.tql import array_literal, compile_filter, compile_search
from dlk_assets.sources.coco import shard_index, shard_key, xyxy_to_coco
from dlk_assets.sources.coco_categories import COCO_CATEGORIES, label_index_to_coco_id

SCHEMA = TableSchema("t", (
    Column("width", Kind.INT), Column("name", Kind.TEXT), Column("metadata", Kind.JSON),
    Column("category_ids", Kind.INT_LIST), Column("embedding", Kind.MULTI_VECTOR, 4), Column("vec", Kind.VECTOR, 4),
))


def test_xyxy_to_coco_converts_corners_to_origin_and_size():
    assert xyxy_to_coco([10, 20, 110, 70]) == [10.0, 20.0, 100.0, 50.0]
    assert xyxy_to_coco([0, 0, 0, 0]) == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("box", [[10, 20, 5, 70], [0, 0, 1], [0, math.nan, 1, 1]])
def test_xyxy_to_coco_rejects_inverted_short_or_nan_boxes(box):
    with pytest.raises(ValueError):
        xyxy_to_coco(box)


def test_category_mapping_uses_official_coco_ids():
    assert len(COCO_CATEGORIES) == 80
    assert label_index_to_coco_id(0) == 1  # person
    assert label_index_to_coco_id(15) == 17  # cat
    assert label_index_to_coco_id(79) == 90  # toothbrush
    with pytest.raises(ValueError):
        label_index_to_coco_id(80)


def test_shard_keys_round_trip_and_sort_in_stream_order():
    assert shard_key(7) == "shard-00007" and shard_index("shard-00007") == 7
    assert sorted([shard_key(10), shard_key(9)]) == [shard_key(9), shard_key(10)]
    with pytest.raises(ValueError):
        shard_index("shard-x")


def test_filter_parses_precedence_and_quotes():
    tree = parse_filter("width >= 300 AND name = 'it''s' OR metadata.dataset != 'coco'")
    assert tree == BoolOp("OR", (
        BoolOp("AND", (Comparison("width", ">=", 300), Comparison("name", "==", "it's"))),
        Comparison("metadata", "!=", "coco", key="dataset"),
    ))
    assert parse_filter("  ") is None


@pytest.mark.parametrize("text", ["width >=", "width 300", "(width > 1", "width > 1 extra", "width > 1; DROP", "width > \"x\""])
def test_filter_rejects_malformed_text(text):
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_filter_compiles_to_tql_with_escaped_strings():
    tql = compile_filter(parse_filter("name = 'a'' OR 1=1 --' AND metadata.dataset = 'coco' AND category_ids CONTAINS 17"), SCHEMA)
    assert tql == """("name" == 'a'' OR 1=1 --' AND "metadata"['dataset'] == 'coco' AND CONTAINS("category_ids", 17))"""


@pytest.mark.parametrize("text,message", [
    ("nope = 1", "no column"), ("width = 'a'", "numeric"), ("name = 3", "text"),
    ("metadata = 'x'", "needs a key"), ("category_ids = 3", "only CONTAINS"), ("embedding = 1", "cannot be filtered"),
])
def test_filter_compilation_checks_columns_and_types(text, message):
    with pytest.raises(ValueError, match=message):
        compile_filter(parse_filter(text), SCHEMA)


def test_search_compiles_maxsim_with_repeated_order_expression():
    query = np.array([[1, 0, 0, 0], [0, 0.5, 0, 0]], np.float32)
    tql = compile_search(VectorSearch("embedding", query, "maxsim", 3, parse_filter("width > 1"), ("width",)), SCHEMA)
    score = 'MAXSIM("embedding", ARRAY[ARRAY[1,0,0,0],ARRAY[0,0.5,0,0]])'
    assert tql == f'SELECT "row_key", "width", {score} AS score WHERE "width" > 1 ORDER BY {score} DESC LIMIT 3'


def test_array_literals_give_back_every_float32_exactly():
    values = np.random.default_rng(3).standard_normal(4096).astype(np.float32) * np.float32(10.0) ** np.arange(-20, 20, 10 / 1024, dtype=np.float32)[:4096]
    values = np.concatenate([values, np.array([0, -0.0, 1e-38, 3.4e38, -1.17549435e-38], np.float32)])
    text = array_literal(values)
    parsed = np.array([float(v) for v in text.removeprefix("ARRAY[").removesuffix("]").split(",")], np.float32)
    assert np.array_equal(parsed.view(np.uint32), values.view(np.uint32))


def test_search_rejects_wrong_query_shape_and_mode():
    with pytest.raises(ValueError, match="does not fit"):
        compile_search(VectorSearch("embedding", np.ones((2, 5), np.float32)), SCHEMA)
    with pytest.raises(ValueError, match="needs a vector column"):
        compile_search(VectorSearch("embedding", np.ones(4, np.float32), "vector"), SCHEMA)
    with pytest.raises(ValueError, match="non-finite"):
        array_literal(np.array([np.nan, 1.0]))


@pytest.mark.parametrize("value,multi,message", [
    (None, False, "is None"), (np.ones(3), False, "dimension 3"), (np.ones((2, 4)), False, "expected shape"),
    ([[1, 2, 3, 4], [1, 2]], True, "not a numeric array"), (np.zeros((0, 4)), True, "no rows"),
    (np.array([1, np.inf, 0, 0]), False, "non-finite"), (np.array([[np.nan, 0, 0, 0]]), True, "non-finite"),
])
def test_validate_vector_rejects_bad_vectors_naming_the_place(value, multi, message):
    with pytest.raises(RowValidationError, match=message) as info:
        validate_vector(value, 4, multi=multi, where="row 'k1', column 'v'")
    assert "row 'k1'" in str(info.value)


def _row(key="k1", **changes):
    row = {"row_key": key, "width": 3, "name": "n", "metadata": {"a": 1}, "category_ids": [1, 2],
           "embedding": np.ones((2, 4)), "vec": np.ones(4)}
    row.update(changes)
    return row


def test_validate_rows_returns_columns_and_checks_every_field():
    columns = validate_rows(SCHEMA, [_row("a"), _row("b", category_ids=[])], "p0")
    assert columns["partition"] == ["p0", "p0"] and columns["embedding"][0].dtype == np.float32
    for bad, message in [
        (_row(width=None), "value is None"), (_row(width="3"), "integer"), (_row(metadata={"x": math.nan}), "JSON"),
        (_row(metadata="{}"), "JSON object"), (_row(embedding=np.ones((2, 3))), "dimension 3"), ({"row_key": "k"}, "missing column"),
        (_row(extra=1), "unknown column"), (_row(row_key=""), "missing row_key"),
    ]:
        with pytest.raises(RowValidationError, match=message):
            validate_rows(SCHEMA, [bad], "p0")
    with pytest.raises(RowValidationError, match="duplicate"):
        validate_rows(SCHEMA, [_row("a"), _row("a")], "p0")


def test_ragged_multi_vectors_pass_as_float32_views_and_bad_bags_are_named():
    bags = [np.ones((n, 4)) * n for n in (1, 3, 2)]
    columns = validate_rows(SCHEMA, [_row(f"k{i}", embedding=bag) for i, bag in enumerate(bags)], "p0")
    assert [b.shape for b in columns["embedding"]] == [(1, 4), (3, 4), (2, 4)]
    assert all(b.dtype == np.float32 and (b == n).all() for b, n in zip(columns["embedding"], (1, 3, 2)))
    for bad_bag, message in [
        (np.array([[0, 0, np.inf, 0]]), "non-finite"), (np.ones((2, 5)), "dimension 5"),
        (np.zeros((0, 4)), "no rows"), (np.ones(4), "expected shape"), ([[1, 2, 3, 4], [1, 2]], "not a numeric array"),
    ]:
        rows = [_row("good", embedding=np.ones((1, 4))), _row("bad", embedding=bad_bag), _row("also-good", embedding=np.ones((3, 4)))]
        with pytest.raises(RowValidationError, match=f"row 'bad', column 'embedding'.*{message}"):
            validate_rows(SCHEMA, rows, "p0")


def test_int_and_json_columns_leave_as_int64_and_compact_json_text():
    columns = validate_rows(SCHEMA, [_row("a", width=7, metadata={"b": [1, None], "é": "ü"})], "p0")
    assert columns["width"].dtype == np.int64 and columns["width"].tolist() == [7]
    assert columns["metadata"] == ['{"b":[1,null],"é":"ü"}']
    with pytest.raises(RowValidationError, match="row 'a', column 'width'"):
        validate_rows(SCHEMA, [_row("a", width=2**70)], "p0")


def test_int_lists_leave_as_int64_arrays_and_bad_lists_are_named():
    given = [[3, 1], [], np.array([7], np.int32), [2**40]]
    columns = validate_rows(SCHEMA, [_row(f"k{i}", category_ids=ids) for i, ids in enumerate(given)], "p0")
    assert [ids.tolist() for ids in columns["category_ids"]] == [[3, 1], [], [7], [2**40]]
    assert all(ids.dtype == np.int64 for ids in columns["category_ids"])
    for bad in ([1, True], [1, 2.5], [[1]], [2**70], "12"):
        rows = [_row("good", category_ids=[1]), _row("bad", category_ids=bad)]
        with pytest.raises(RowValidationError, match="row 'bad', column 'category_ids'"):
            validate_rows(SCHEMA, rows, "p0")


@pytest.mark.parametrize("value", [
    {}, {"a": [1, 2.5, None, True, {"b": "x"}]}, {"quote\"s": "back\\slash\n\u0000", "unicode": "café ☕"},
    {"big": 2**62, "tiny": 1e-300, "neg": -0.0}, {1: "int key"},
])
def test_compact_json_matches_the_standard_library(value):
    import json
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_compact_json_refuses_nan_cycles_and_unknown_types():
    cyclic = {}
    cyclic["self"] = cyclic
    for value, error in [({"x": math.nan}, ValueError), ({"x": math.inf}, ValueError), (cyclic, RecursionError),
                         ({"x": object()}, TypeError), ({"x": {1, 2}}, TypeError), ({(1, 2): 3}, TypeError)]:
        with pytest.raises(error):
            compact_json(value)


def test_fingerprint_changes_with_revision_or_preprocessing():
    base = make_fingerprint("m", "r1", {"size": 224})
    assert base == make_fingerprint("m", "r1", {"size": 224})
    assert base != make_fingerprint("m", "r2", {"size": 224}) != make_fingerprint("m", "r1", {"size": 256})


def test_confident_labels_keep_at_least_the_best_class():
    probabilities = np.array([0.01, 0.6, 0.3, 0.09])
    assert confident_labels(probabilities, top_k=3, min_probability=0.05) == [1, 2, 3]
    assert confident_labels(np.array([0.25, 0.25, 0.26, 0.24]), top_k=2, min_probability=0.9) == [2]
    classes = imagenet_classes()
    assert len(classes) == 1000 and classes[281] == "tabby" and classes[967] == "espresso"


def test_rows_written_before_a_vector_column_was_added_are_embedded_again(tmp_path):
    """A new encoder output (a column added to an existing embeddings table) reads back NaN for older
    rows; the embedding plan must not count those rows as current."""
    from dlk_assets.defs.pipeline.embedding_work import _filled
    from dlk_assets.lake.deeplake_local import LocalDeepLake

    before = TableSchema("grown", (Column("x", Kind.INT),))
    after = TableSchema("grown", (Column("x", Kind.INT), Column("features", Kind.VECTOR, 4), Column("bag", Kind.MULTI_VECTOR, 4)))
    LocalDeepLake(tmp_path).table(before).replace_partition("p", [{"row_key": "r1", "x": 1}], "old rows")
    grown = LocalDeepLake(tmp_path).table(after)
    grown.append("q", [{"row_key": "r2", "x": 2, "features": np.ones(4, np.float32), "bag": np.ones((2, 4), np.float32)}], "new")
    old, new = grown.read_partition("p", ("features", "bag"))[0], grown.read_partition("q", ("features", "bag"))[0]
    assert not _filled(old["features"]) and not _filled(old["bag"])
    assert _filled(new["features"]) and _filled(new["bag"])
