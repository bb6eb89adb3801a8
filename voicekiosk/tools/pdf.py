"""PDFs in the knowledge folder: their text, page by page, with pypdf (pure Python, no other
dependency). Bounded in pages and characters; a PDF it cannot read is skipped, not fatal."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from voicekiosk.tools.passages import split

MAX_PAGES = 300
MAX_CHARS = 1024 * 1024  # of text from one PDF


class PdfError(Exception):
    """The file is not a PDF pypdf can read (broken, encrypted with a password, ...)."""


def pdf_passages(path: str) -> Iterator[tuple[str, str]]:
    """``(heading, passage)`` of the PDF at ``path``; the heading names the page ("page 3").

    Raises:
      PdfError: it cannot be read.
    """
    import pypdf  # only when the folder has a PDF

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about odd files are noise here
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfError("encrypted")
        pages = [page.extract_text() or "" for page in reader.pages[:MAX_PAGES]]
    except PdfError:
        raise
    except Exception as exc:  # pypdf raises many kinds on a broken file; none may stop the index
        raise PdfError(type(exc).__name__) from None
    left = MAX_CHARS
    for number, text in enumerate(pages, 1):
        for heading, body in split(text[:left]):
            yield f"page {number}" + (f": {heading}" if heading else ""), body
        left -= len(text)
        if left <= 0:
            return
