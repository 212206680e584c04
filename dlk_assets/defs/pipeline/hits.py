"""How search hits print: one column list per source, rendered as a terminal table or as Markdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlk_assets.defs.markdown import markdown_table
from dlk_assets.retrieval.requests import Hit


@dataclass(frozen=True)
class HitColumn:
    """One column of a hits table: its header, how to read it from a hit, and its terminal width."""

    header: str
    value: Callable[[Hit], Any]
    width: int = 0  # 0: the last, free-width column
    numeric: bool = False  # right-aligned in the terminal


def value_column(name: str, header: str | None = None, width: int = 0, numeric: bool = False) -> HitColumn:
    """A column that shows one of the hit's values."""
    return HitColumn(header or name, lambda hit: hit.values.get(name, ""), width, numeric)


RANK = HitColumn("rank", lambda hit: hit.rank, 4, True)
SCORE = HitColumn("score", lambda hit: hit.score, 7, True)


def _cell(value: Any, column: HitColumn) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.4f}" if column.header == "score" else f"{value:.2f}"
    else:
        text = str(value)
    if not column.width:
        return text
    return text.rjust(column.width) if column.numeric else text.ljust(column.width)


def format_hits(hits: Sequence[Hit], columns: Sequence[HitColumn]) -> str:
    """A plain-text table with a header line; `(no matches)` when empty."""
    header = "  ".join((c.header.rjust(c.width) if c.numeric else c.header.ljust(c.width)) if c.width else c.header for c in columns)
    lines = [header.rstrip()]
    lines += ["  ".join(_cell(c.value(hit), c) for c in columns).rstrip() for hit in hits]
    if not hits:
        lines.append("  (no matches)")
    return "\n".join(lines)


def hits_markdown(hits: Sequence[Hit], columns: Sequence[HitColumn]) -> str:
    """The same table in Markdown, for materialization metadata."""
    return markdown_table([c.header for c in columns], [[c.value(hit) for c in columns] for hit in hits])
