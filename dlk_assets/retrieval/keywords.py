"""What a query contributes to a BM25 search.

Deep Lake's BM25 ranks every row that shares *any* word with the query, so common words ("the",
"when", "get") pull in noise; they are dropped from the keyword side only (the vector side sees
the query as typed). Identifiers, error names and numbers are never stop words.
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
