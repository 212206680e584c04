"""Hostile search input is refused before it reaches the engine: one `dlk:` line, exit status 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlk_assets.cli import main
from dlk_assets.lake.deeplake_local import LocalDeepLake
from dlk_assets.lake.schema import Column, Kind, TableSchema
from dlk_assets.retrieval.filters import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    FilterSyntaxError,
    parse_filter,
)
from dlk_assets.retrieval.requests import MAX_K, VectorSearch

SCHEMA = TableSchema("limits", (Column("width", Kind.INT), Column("v", Kind.VECTOR, 8)))


@pytest.mark.parametrize(("where", "message"), [
    (" OR ".join(f"width = {i}" for i in range(3000)), "the limit is 4096"),
    (" OR ".join(f"width={i}" for i in range(MAX_COMPARISONS + 1)), f"more than {MAX_COMPARISONS} comparisons"),
    ("(" * 5000 + "width = 1" + ")" * 5000, "the limit is 4096"),
    ("(" * (MAX_DEPTH + 1) + "width = 1" + ")" * (MAX_DEPTH + 1), f"deeper than {MAX_DEPTH} levels"),
    ("width = 1234567890123456789", "integer 1234567890123456789 is out of range"),
    ("width > 1e400", "out of range"),
])
def test_filters_beyond_the_limits_are_refused_by_the_parser(where, message):
    with pytest.raises(FilterSyntaxError, match=message):
        parse_filter(where)


def test_a_filter_at_the_limits_runs_on_the_engine(tmp_path):
    table = LocalDeepLake(tmp_path).table(SCHEMA)
    rng = np.random.default_rng(0)
    table.replace_partition("p", [{"row_key": f"r{i}", "width": i, "v": rng.standard_normal(8).astype(np.float32)}
                                  for i in range(200)], "rows")
    nested = "(" * (MAX_DEPTH - 1) + "width >= 0" + ")" * (MAX_DEPTH - 1)
    where = parse_filter(" OR ".join([nested, *(f"width = {i}" for i in range(MAX_COMPARISONS - 1))]))
    hits = table.search(VectorSearch("v", rng.standard_normal(8).astype(np.float32), "vector", MAX_K, where))
    assert len(hits) == 200
    assert len(table.read_where(parse_filter(" OR ".join(f"width = {i}" for i in range(MAX_COMPARISONS))))) == MAX_COMPARISONS


@pytest.mark.parametrize("arguments", [
    ["--where", " OR ".join(f"width = {i}" for i in range(3000))],
    ["--where", "(" * 5000 + "width = 1" + ")" * 5000],
    ["--where", "width = 99999999999999999999"],
    ["--k", "100000000"],
    ["--k", "0"],
])
def test_the_cli_answers_bad_search_input_with_one_line_and_status_2(dagster_home, capsys, arguments):
    assert main(["search", "coco", "a cat", *arguments]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlk: ") and "Traceback" not in captured.err and captured.out == ""


def test_an_oversized_query_text_is_refused(dagster_home, capsys):
    assert main(["search", "memory", "x" * 10_001]) == 2
    assert "the limit is 10000" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has the CUDA device the test asks for in vain")
def test_a_missing_gpu_or_missing_weights_is_one_dlk_line(dagster_home, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DLK_DEVICE", "cuda")
    assert main(["search", "memory", "fix the login"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dlk: ") and error.count("\n") == 1 and "no CUDA device" in error
    monkeypatch.setenv("DLK_DEVICE", "cpu")
    monkeypatch.setenv("DLK_IMAGE_ENCODER", "colqwen3")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["search", "coco", "a cat"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dlk: ") and error.count("\n") == 1 and "Hugging Face cache" in error
