"""What a query contributes to a BM25 search.

Deep Lake's BM25 ranks every row that shares *any* word with the query, so common words ("the",
"when", "get") pull in noise; they are dropped from the keyword side only (the vector side sees
the query as typed). Identifiers, error names and numbers are never stop words.

It also splits a query into terms and says which look like identifiers (`query_terms`), and a stored
text into terms (`text_terms`): hybrid fusion rewards a row that contains the query's identifiers.
"""

from __future__ import annotations

import re

STOP_WORDS = frozenset("""
a about after again all an and any are as at be been before being both but by can cannot could did do does doing
down during each few for from further get gets got had has have having he her here him his how i if in into is it
its just keep keeps me more most my no nor not now of off on once only or other our out over own same she should so
some such than that the their them then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your
""".split())  # noqa: SIM905 (a word list reads better as text)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def keyword_text(query: str) -> str:
    """The query's words minus stop words and control characters (the whole query if nothing is left)."""
    clean = _CONTROL.sub(" ", query).strip()
    words = [w for w in clean.split() if w.lower().strip(".,:;!?\"'()") not in STOP_WORDS]
    return " ".join(words) or clean


# A term: word characters, with dots and hyphens allowed inside (`yaml.safe_load`, `X-Forwarded-Host`,
# `utf-8-sig`), which is how Deep Lake's BM25 splits text too (measured on the memory sample: `0xe9;`
# finds `0xe9`, `--verbose` finds `verbose`, `app.plugins` does not find `plugins`).
_TERM = re.compile(r"\w(?:[\w.\-]*\w)?")
_PART = re.compile(r"[.\-]")
_EDGE = "\"'`.,:;!?()[]{}<>"
# What makes a token look like code rather than prose: snake_case, a digit (`0xe9`, `int32`, `404`), a
# dotted or called name (`app.config`, `F('views')`), a path, a flag (`--verbose`), inner capitals
# (`TokenExpiredError`, `NaN`, `X-Forwarded-Host`) or an acronym / constant (`RFC`, `USE_TZ`).
_IDENTIFIER = re.compile(r"_|\d|\w\.\w|\w\(|/|^-+\w|[a-z][A-Z]|[A-Z]{2,}|\w-[A-Z]")


def looks_like_identifier(token: str) -> bool:
    """Whether a whitespace-separated token of a query reads as code (a name, an error class, a flag,
    a setting, a file) rather than as a word of prose."""
    return bool(_IDENTIFIER.search(token.strip(_EDGE)))


def query_terms(query: str) -> dict[str, bool]:
    """The query's terms (lower case, stop words dropped, in order), each with whether it came from a
    token that looks like an identifier."""
    terms: dict[str, bool] = {}
    for token in _CONTROL.sub(" ", query).split():
        identifier = looks_like_identifier(token)
        for term in _TERM.findall(token.lower()):
            if term not in STOP_WORDS:
                terms[term] = terms.get(term, False) or identifier
    return terms


def text_terms(text: str) -> frozenset[str]:
    """The terms of a stored text, plus the parts of its dotted and hyphenated terms (so the query term
    `safe_load` is found in `yaml.safe_load`)."""
    terms = set(_TERM.findall(text.lower()))
    return frozenset(terms.union(*(_PART.split(term) for term in terms if _PART.search(term))))
