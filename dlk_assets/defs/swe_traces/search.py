"""Search agent memory three ways (BM25, vector, hybrid): the shared text search (`retrieval.text_modes`)
on the `task` column, and the memory fields a hit carries. BM25 on `errors` finds similar failures.
Hybrid scores the union of both legs by cosine plus a bonus for the query's identifiers found in the
task (`retrieval/fusion.py`, with what it measured on the memory probes).

The helpers below are that search with memory's columns filled in, for the agent tools and the benchmarks.
"""

from __future__ import annotations

from functools import partial

from dlk_assets.retrieval import text_modes
from dlk_assets.retrieval.text_modes import (  # noqa: F401 (memory's search settings, read by the benchmarks)
    DEFAULT_WEIGHTS,
    IDENTIFIER_WEIGHT,
    MODES,
    TextSearch,
)

RESULT_COLUMNS = ("run_id", "agent", "model", "date", "task", "episode", "trial_name", "outcome", "errors", "summary")

search_memory = TextSearch("memory", "task", RESULT_COLUMNS)
bm25_hits = partial(text_modes.bm25_hits, column="task", select=RESULT_COLUMNS)
vector_hits = partial(text_modes.vector_hits, select=RESULT_COLUMNS)
hybrid_hits = partial(text_modes.hybrid_hits, text_column="task", select=RESULT_COLUMNS)
