"""Text as passages to index (``split``) and a visitor's words as a query (``match_expression``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_WORDS = 200  # words in one passage, at most
MAX_TERMS = 32  # words of a query searched for
MAX_TERM = 64  # characters of one
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_WORD = re.compile(r"\w+")


def match_expression(query: str) -> str:
    """An FTS5 query any passage with one of ``query``'s words matches (bm25 ranks those with
    more of them higher). Only words are kept, each quoted: no input is FTS5 syntax."""
    terms: list[str] = []
    for match in _WORD.finditer(query[:4096]):
        term = match.group(0)[:MAX_TERM]
        if term.lower() not in (t.lower() for t in terms):
            terms.append(term)
        if len(terms) >= MAX_TERMS:
            break
    return " OR ".join(f'"{term}"' for term in terms)


def split(text: str) -> Iterator[tuple[str, str]]:
    """``(heading, passage)``: sections by Markdown heading (``# ...``), cut into runs of paragraphs
    of at most ``MAX_WORDS`` words (a longer paragraph is cut between words)."""
    heading, words = "", list[str]()
    for paragraph in _paragraphs(text):
        found = _HEADING.match(paragraph)
        if found and "\n" not in paragraph:
            if words:
                yield heading, " ".join(words)
            heading, words = found.group(2).strip()[:200], []
            continue
        new = paragraph.split()
        if words and len(words) + len(new) > MAX_WORDS:
            yield heading, " ".join(words)
            words = []
        words += new
        while len(words) > MAX_WORDS:
            yield heading, " ".join(words[:MAX_WORDS])
            words = words[MAX_WORDS:]
    if words:
        yield heading, " ".join(words)


def _paragraphs(text: str) -> Iterator[str]:
    """Blocks between blank lines; a heading line is a block of its own."""
    block: list[str] = []
    for line in text.splitlines():
        if not line.strip() or _HEADING.match(line):
            if block:
                yield "\n".join(block)
                block = []
            if line.strip():
                yield line.strip()
        else:
            block.append(line)
    if block:
        yield "\n".join(block)
