"""A small, safe filter language for `--where`: `width >= 300 AND metadata.dataset = 'coco'`.

Filters are parsed into a tree and compiled per backend; user text never reaches an engine as-is.
Grammar: expr := term (OR term)*; term := factor (AND factor)*; factor := '(' expr ')' | comparison;
comparison := field op literal, field := name ('.' name)?, op := = == != < <= > >= | CONTAINS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "CONTAINS")
# Limits that keep hostile input away from the engine: about 3000 comparisons crash Deep Lake's
# query planner (SIGSEGV), deep nesting would exhaust Python's stack, and integers beyond 2**53
# are not exact in the engine's doubles (19+ digits fail inside it).
MAX_FILTER_CHARS = 4096
MAX_COMPARISONS = 64
MAX_DEPTH = 16
MAX_ABS_INTEGER = 2**53


class InvalidSearchInput(ValueError):
    """Search input refused before it reaches an engine (the CLI exits with status 2)."""


class FilterSyntaxError(InvalidSearchInput):
    """A filter that does not parse or exceeds a limit; the message shows where."""


@dataclass(frozen=True)
class Comparison:
    """`field op value`; `key` is set for a JSON column lookup like `metadata.dataset`.

    Besides the parsed operators, `HAS` (built by vector-record filters, not parsed from text) is
    true when a JSON key holds an array with `value` in it."""

    field: str
    op: str
    value: str | int | float
    key: str | None = None


@dataclass(frozen=True)
class BoolOp:
    """AND / OR over two or more sub-filters."""

    op: str
    operands: tuple[Filter, ...]


Filter = Comparison | BoolOp

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|=|<|>)"
    r"|(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?))"
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterSyntaxError(f"cannot read filter at character {position}: {text[position:position + 20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0
        self.depth = 0
        self.comparisons = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError(f"filter ends too early: {self.text!r}")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() == word:
            self.position += 1
            return True
        return False

    def expression(self) -> Filter:
        operands = [self.term()]
        while self.keyword("OR"):
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def term(self) -> Filter:
        operands = [self.factor()]
        while self.keyword("AND"):
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def factor(self) -> Filter:
        if self.peek() == ("paren", "("):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterSyntaxError(f"filter nests parentheses deeper than {MAX_DEPTH} levels")
            inner = self.expression()
            if self.take() != ("paren", ")"):
                raise FilterSyntaxError(f"missing ')' in filter {self.text!r}")
            self.depth -= 1
            return inner
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise FilterSyntaxError(f"filter has more than {MAX_COMPARISONS} comparisons")
        kind, name = self.take()
        if kind != "word" or name.upper() in ("AND", "OR", "CONTAINS"):
            raise FilterSyntaxError(f"expected a column name, got {name!r} in filter {self.text!r}")
        if self.keyword("CONTAINS"):
            op = "CONTAINS"
        else:
            kind, op = self.take()
            if kind != "op":
                raise FilterSyntaxError(f"expected an operator after {name!r}, got {op!r}")
            op = "==" if op == "=" else op
        kind, raw = self.take()
        if kind == "num":
            value: str | int | float = _number(raw)
        elif kind == "str":
            value = raw[1:-1].replace("''", "'")
        else:
            raise FilterSyntaxError(f"expected a number or a 'quoted string' after {name} {op}, got {raw!r}")
        field, _, key = name.partition(".")
        return Comparison(field, op, value, key or None)


def _number(raw: str) -> int | float:
    if any(c in raw for c in ".eE"):
        value = float(raw)
        if not math.isfinite(value) or abs(value) > MAX_ABS_INTEGER:
            raise FilterSyntaxError(f"number {raw[:30]} is out of range (at most {MAX_ABS_INTEGER} in magnitude)")
        return value
    if len(raw.lstrip("-")) > 16 or abs(int(raw)) > MAX_ABS_INTEGER:
        raise FilterSyntaxError(f"integer {raw[:30]}{'...' if len(raw) > 30 else ''} is out of range (at most {MAX_ABS_INTEGER} in magnitude)")
    return int(raw)


def parse_filter(text: str | None) -> Filter | None:
    """Parse filter text; empty text means no filter. Filters longer than `MAX_FILTER_CHARS`, with more
    than `MAX_COMPARISONS` comparisons, nested deeper than `MAX_DEPTH` or with numbers beyond
    `MAX_ABS_INTEGER` raise `FilterSyntaxError`."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_CHARS:
        raise FilterSyntaxError(f"filter is {len(text)} characters long; the limit is {MAX_FILTER_CHARS}")
    parser = _Parser(text)
    tree = parser.expression()
    if parser.peek() is not None:
        raise FilterSyntaxError(f"unexpected {parser.peek()[1]!r} in filter {text!r}")
    return tree


def filter_fields(tree: Filter | None) -> set[str]:
    """The column names a filter refers to."""
    if tree is None:
        return set()
    if isinstance(tree, Comparison):
        return {tree.field}
    return set().union(*(filter_fields(operand) for operand in tree.operands))
