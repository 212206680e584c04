"""Memory-backed tools an agent framework can call (Pydantic AI, LangChain, plain function calling).

Each tool is a plain method with typed inputs and Pydantic outputs, so a framework can derive the
tool schema from the signature. Agents differ only in how they query the shared memory: a code
assistant searches by task, a debugging oracle by error text, and replay fetches a whole trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from dlk_assets.defs.pipeline.serving import embeddings_table
from dlk_assets.defs.swe_traces.replay import traces_for_run
from dlk_assets.defs.swe_traces.search import hybrid_hits, search_memory
from dlk_assets.defs.swe_traces.spec import MEMORY
from dlk_assets.defs.swe_traces.tables import SWE_TRACES
from dlk_assets.encoders.base import Encoder
from dlk_assets.lake.tables import Lake, Table
from dlk_assets.retrieval.requests import Hit


class MemoryRecord(BaseModel):
    """One remembered trace: what the task was, how it ended, what went wrong, and how it ranked."""

    rank: int
    score: float | None
    run_id: str
    task: str
    episode: str
    model: str
    outcome: str
    errors: list[str]
    summary: str


class TraceMessage(BaseModel):
    role: str
    content: str


class Trace(BaseModel):
    """A full trace as ingested: metadata and every message in order."""

    run_id: str
    agent: str
    model: str
    model_provider: str
    date: str
    task: str
    episode: str
    trial_name: str
    messages: list[TraceMessage]


def _record(hit: Hit) -> MemoryRecord:
    values = hit.values
    return MemoryRecord(rank=hit.rank, score=hit.score, run_id=values["run_id"], task=values["task"], episode=values["episode"],
                        model=values["model"], outcome=values["outcome"], errors=values["errors"].split(), summary=values["summary"])


@dataclass
class MemoryTools:
    """The tools, bound to a lake and the text encoder that serves the memory (its active model)."""

    lake: Lake
    encoder: Encoder

    def _table(self) -> Table:
        return embeddings_table(MEMORY, self.lake, self.encoder)

    def search_memory(self, query: str, mode: Literal["bm25", "vector", "hybrid"] = "hybrid", k: int = 5) -> list[MemoryRecord]:
        """Past traces relevant to `query`: bm25 for exact identifiers and error names, vector for
        paraphrases, hybrid (default) for both."""
        return [_record(hit) for hit in search_memory(self._table(), self.encoder, query, mode, k)]

    def similar_failures(self, error_text: str, k: int = 5, only_unresolved: bool = False) -> list[MemoryRecord]:
        """Past traces that hit a similar error: BM25 on the errors they saw, fused with the meaning of
        their task. `only_unresolved` keeps the traces whose agent did not fix it."""
        hits = hybrid_hits(self._table(), self.encoder, error_text, k * 4 if only_unresolved else k, text_column="errors")
        records = [_record(hit) for hit in hits if not only_unresolved or hit.values["outcome"] != "resolved"][:k]
        return [record.model_copy(update={"rank": rank}) for rank, record in enumerate(records, start=1)]

    def trace_by_run_id(self, run_id: str) -> list[Trace]:
        """Every episode of the run, in order, exactly as ingested (empty when the run id is unknown)."""
        if not self.lake.exists(SWE_TRACES.name):
            return []
        return [Trace(**{name: row[name] for name in Trace.model_fields if name != "messages"},
                      messages=[TraceMessage(**m) for m in row["conversations"]["messages"]])
                for row in traces_for_run(self.lake.table(SWE_TRACES), run_id)]

    def as_tools(self) -> list:
        """The bound tool functions, to hand to an agent framework."""
        return [self.search_memory, self.similar_failures, self.trace_by_run_id]
