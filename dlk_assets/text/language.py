"""The language of a text as an ISO 639-1 code, detected with py3langid.

py3langid also knows languages that have only three-letter codes; the record schema asks for
ISO 639-1, so the best two-letter answer is taken. Very short text (a title, a table cell) says
too little to tell: it gets the default.
"""

from __future__ import annotations

import py3langid

DEFAULT_LANGUAGE = "en"
MIN_LETTERS = 20  # below this, the detector's guess is noise ("ok" comes out as Serbian)


def detect_language(text: str, default: str = DEFAULT_LANGUAGE) -> str:
    """The ISO 639-1 code of the text's language, or `default` when the text is too short to tell."""
    if sum(character.isalpha() for character in text) < MIN_LETTERS:
        return default
    return next((code for code, _ in py3langid.rank(text) if len(code) == 2), default)
