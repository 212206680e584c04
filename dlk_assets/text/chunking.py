"""Sentence-aware chunks of a document's text: deterministic, at most `size` characters each.

Text arrives as paragraphs separated by blank lines. Inside a paragraph a line break is a soft wrap
(hard-wrapped prose, like this project's READMEs) unless the next line starts a block of its own: a
list item, a numbered item, a quote, a table row, a `key: value` line (what a JSON document becomes),
or any line after a heading or a table row. Each block is cut into sentences after `. ! ? …` followed
by a space (and after `。！？`).

Chunks pack whole sentences up to `size` characters. Each next chunk starts with the last whole
sentences of the previous one that fit in `overlap` characters, so a thought cut at a chunk border
is still whole on one side. Only a sentence longer than `size` is split, at whitespace (a single
word longer than `size`, such as a long URL, at `size`). The same text and settings always give
the same chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_CHUNK_CHARS = 1000
DEFAULT_OVERLAP_CHARS = 150

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A `key: value` line has a key without spaces (`teas[2].name: Oolong`), so wrapped prose rarely looks like one.
_BLOCK_START = re.compile(r"^\s*(?:[-*+•]\s|\d{1,3}[.)]\s|#{1,6}\s|>|\||[\w\[\]().-]{1,60}:\s)")
_ONE_LINE_BLOCK = re.compile(r"^\s*(?:#{1,6}\s|\|)")  # headings and table rows never wrap onto the next line
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?= )|[。！？]+")


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) and what joins it to the unit before it in a chunk."""

    text: str
    gap: str  # " " inside a block, "\n" between blocks, "\n\n" between paragraphs


def check_chunk_settings(size: int, overlap: int) -> None:
    """`ValueError` unless `size` >= 1 and 0 <= `overlap` < `size`."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk size must be a positive number of characters, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be from 0 to {size - 1} characters (less than the size), got {overlap!r}")


def _blocks(paragraph: str) -> list[str]:
    blocks: list[str] = []
    previous = ""
    for line in paragraph.split("\n"):
        if not line.strip():
            continue
        if blocks and not _BLOCK_START.match(line) and not _ONE_LINE_BLOCK.match(previous):
            blocks[-1] += " " + line.strip()
        else:
            blocks.append(line.strip())
        previous = line
    return [" ".join(block.split()) for block in blocks]


def sentences(block: str) -> list[str]:
    """The sentences of one block of text, in order, without surrounding whitespace."""
    found, start = [], 0
    for match in _SENTENCE_END.finditer(block):
        sentence = block[start:match.end()].strip()
        if sentence:
            found.append(sentence)
        start = match.end()
    rest = block[start:].strip()
    return [*found, rest] if rest else found


def _pieces(sentence: str, size: int) -> list[str]:
    """The sentence itself when it fits, else its words packed into pieces of at most `size`."""
    if len(sentence) <= size:
        return [sentence]
    pieces, current = [], ""
    for word in sentence.split(" "):
        while len(word) > size:  # no whitespace to split at: cut the word itself
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:size])
            word = word[size:]
        if not word:
            continue
        if current and len(current) + 1 + len(word) > size:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*pieces, current] if current else pieces


def _units(text: str, size: int) -> list[_Unit]:
    units = []
    for paragraph in _PARAGRAPH_BREAK.split(text.strip()):
        for block_index, block in enumerate(_blocks(paragraph)):
            for sentence_index, sentence in enumerate(sentences(block)):
                gap = " " if sentence_index else ("\n" if block_index else "\n\n")
                units += [_Unit(piece, gap if i == 0 else " ") for i, piece in enumerate(_pieces(sentence, size))]
    return units


def _length(units: list[_Unit]) -> int:
    return sum(len(u.text) for u in units) + sum(len(u.gap) for u in units[1:])


def _join(units: list[_Unit]) -> str:
    return units[0].text + "".join(u.gap + u.text for u in units[1:])


def _overlap_tail(window: list[_Unit], overlap: int) -> list[_Unit]:
    """The last whole units of `window` that together fit in `overlap` characters."""
    tail: list[_Unit] = []
    for unit in reversed(window):
        if _length([unit, *tail]) > overlap:
            break
        tail.insert(0, unit)
    return tail


def chunk_text(text: str, size: int = DEFAULT_CHUNK_CHARS, overlap: int = DEFAULT_OVERLAP_CHARS) -> list[str]:
    """The text's chunks in order: whole sentences, at most `size` characters each, each after the
    first opening with up to `overlap` characters of whole sentences from the one before. No text, no chunks."""
    check_chunk_settings(size, overlap)
    chunks: list[str] = []
    window: list[_Unit] = []
    for unit in _units(text, size):
        if window and _length([*window, unit]) > size:
            chunks.append(_join(window))
            window = _overlap_tail(window, overlap)
            while window and _length([*window, unit]) > size:  # the overlap must leave room for new text
                window.pop(0)
        window.append(unit)
    if window:
        chunks.append(_join(window))
    return chunks
