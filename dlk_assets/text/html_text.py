"""The visible text of an HTML page, read with the standard library's parser.

Scripts, styles and other elements a browser never shows as text are dropped; block elements
(paragraphs, headings, list items, table rows, ...) become paragraph breaks, so the chunker sees the
page's structure; whitespace inside a block collapses to single spaces, as a browser renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

# Elements whose content is never rendered as text (a script's source, a style sheet, ...).
HIDDEN_ELEMENTS = frozenset({"script", "style", "template", "noscript"})
BLOCK_ELEMENTS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tr", "ul",
})
CELL_ELEMENTS = frozenset({"td", "th"})


@dataclass(frozen=True)
class HtmlText:
    """A page's visible text (paragraphs separated by blank lines) and its title ('' when it has none)."""

    text: str
    title: str


class _VisibleText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.title_parts: list[str] = []
        self.first_heading = ""
        self._current: list[str] = []
        self._hidden_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in HIDDEN_ELEMENTS:
            self._hidden_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in BLOCK_ELEMENTS:
            self._end_paragraph()
        elif tag in CELL_ELEMENTS:
            self._current.append(" ")  # cells of one row stay on one line, apart

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in BLOCK_ELEMENTS:
            ended = self._end_paragraph()
            if tag == "h1" and ended and not self.first_heading:
                self.first_heading = ended

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden_depth:
            self._current.append(data)

    def _end_paragraph(self) -> str:
        text = " ".join("".join(self._current).split())
        self._current = []
        if text:
            self.paragraphs.append(text)
        return text

    def close(self) -> None:
        super().close()
        self._end_paragraph()


def html_to_text(html: str) -> HtmlText:
    """Visible text and title of an HTML document: `<title>`, else the first `<h1>`, else ''."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    title = " ".join("".join(parser.title_parts).split()) or parser.first_heading
    return HtmlText("\n\n".join(parser.paragraphs), title)
