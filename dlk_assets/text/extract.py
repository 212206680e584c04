"""Document bytes to searchable text and a title, per content type (no files, no storage)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from dlk_assets.text.html_text import html_to_text
from dlk_assets.text.json_text import json_title, json_to_text

TEXT_CONTENT_TYPES = ("text/plain", "text/markdown", "text/html", "application/json")
MAX_TITLE_CHARS = 200
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


class UnreadableDocument(ValueError):
    """Bytes that are not UTF-8 text, or text that does not parse as its format; the message says why."""


@dataclass(frozen=True)
class ExtractedText:
    """What a document says: its text (paragraphs separated by blank lines) and its title ('' if none)."""

    text: str
    title: str


def decode_utf8(data: bytes) -> str:
    """UTF-8 text without a byte-order mark, newlines as `\\n`; `UnreadableDocument` names the first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                                 f"cannot be decoded ({exc.reason})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def first_line(text: str) -> str:
    """The first non-blank line."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def markdown_title(text: str) -> str:
    """The first ATX heading's text (`# Title`), else the first non-blank line."""
    for line in text.splitlines():
        match = _MARKDOWN_HEADING.match(line)
        if match:
            return match.group(1)
    return first_line(text)


def extract_text(data: bytes, content_type: str) -> ExtractedText:
    """The text and title of a Text, Markdown, HTML or JSON document.

    Text and Markdown are kept as written (Markdown's headings and lists help the chunker); HTML
    becomes its visible text; JSON becomes `key: value` lines. The title is a Markdown document's
    first heading, a text's first line, an HTML `<title>` or first `<h1>`, a JSON `title` or `name`
    ('' when there is none: the caller names the document by its file). `UnreadableDocument` when the bytes are
    not UTF-8 or the JSON does not parse; `ValueError` for a content type this module does not read.
    """
    if content_type not in TEXT_CONTENT_TYPES:
        raise ValueError(f"cannot extract text from {content_type!r}; readable types: {', '.join(TEXT_CONTENT_TYPES)}")
    text = decode_utf8(data)
    if content_type == "text/html":
        page = html_to_text(text)
        return ExtractedText(page.text, _short(page.title))
    if content_type == "application/json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UnreadableDocument(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        return ExtractedText(json_to_text(document), _short(json_title(document)))
    text = text.strip()
    title = markdown_title(text) if content_type == "text/markdown" else first_line(text)
    return ExtractedText(text, _short(title))
