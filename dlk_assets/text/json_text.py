"""A JSON document as readable `key: value` lines, one per value, for search and embedding.

Nested keys join with dots (`brewing.temperature_c: 80`); a list of plain values stays on one line
(`tags: green, japanese`); items of a list of objects are numbered from 1, as a person counts
(`steps[2].text: ...`). Nulls, empty lists and empty objects carry no text and are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value)  # numbers and booleans as JSON writes them: 80, 0.5, true


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def json_lines(value: Any, path: str = "") -> Iterator[str]:
    """`path: value` lines for every non-null value under `value`, in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_lines(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        if all(_is_scalar(item) for item in value):
            shown = [_scalar(item) for item in value if item is not None]
            if shown:
                yield f"{path}: {', '.join(shown)}" if path else ", ".join(shown)
        else:
            for number, item in enumerate(value, start=1):
                yield from json_lines(item, f"{path}[{number}]")
    elif value is not None:
        text = _scalar(value)
        if text:
            yield f"{path}: {text}" if path else text


def json_to_text(document: Any) -> str:
    """The document's `key: value` lines, one per line."""
    return "\n".join(json_lines(document))


def json_title(document: Any) -> str:
    """A top-level `title` (or else `name`) string, or ''."""
    if isinstance(document, dict):
        for key in ("title", "name"):
            if isinstance(document.get(key), str) and document[key].strip():
                return " ".join(document[key].split())
    return ""
