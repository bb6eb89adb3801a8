"""The built-in ``lookup`` tool: full-text search of the knowledge folder, answered with the best
passages and the files they come from. SQLite runs in a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voicekiosk.datadir import ensure_dir
from voicekiosk.tools.base import ToolError
from voicekiosk.tools.knowledge import Knowledge, Passage

log = logging.getLogger("voicekiosk.tools")
INDEX = "knowledge.sqlite3"  # in the data directory
MAX_ANSWER = 2000  # characters of passages given to the model
DEFAULT_LIMIT = 3
NOTHING = "Nothing found in the knowledge folder for that."
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for, in a few words."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 8, "description": "Passages wanted (3 if unsaid)."},
    },
    "required": ["query"],
    "additionalProperties": False,
}


class LookupTool:
    """``lookup`` over the index of ``folder`` kept in ``data_dir``.

    Raises:
      StartupError: the data directory or the index cannot be used, or SQLite has no FTS5.
    """

    name = "lookup"
    description = (
        "Search the venue's own documents (opening hours, directions, events, rules...) and get the "
        "best passages with the file each comes from. Use it before answering a question about the venue."
    )
    source = "knowledge folder"
    timeout = 10.0

    def __init__(self, folder: Path, data_dir: Path) -> None:
        self.parameters: Mapping[str, Any] = PARAMETERS
        ensure_dir(data_dir)
        self.knowledge = Knowledge(folder, data_dir / INDEX)

    async def start(self) -> int:
        """Index what changed since the last run (all of it the first time); the files indexed."""
        count = await asyncio.to_thread(self.knowledge.refresh)
        log.info("knowledge: %d file(s) indexed", count)
        return count

    def close(self) -> None:
        self.knowledge.close()

    async def run(self, arguments: dict[str, Any]) -> str:
        query = str(arguments.get("query", ""))
        limit = arguments.get("limit", DEFAULT_LIMIT)
        try:
            passages = await asyncio.to_thread(self.knowledge.search, query, limit)
        except sqlite3.Error as exc:
            log.warning("knowledge: search failed: %s", exc)
            raise ToolError("The knowledge folder could not be searched just now.") from None
        return answer(passages)


def answer(passages: list[Passage], budget: int = MAX_ANSWER) -> str:
    """The passages as text for the model, each under its file and heading, at most ``budget``
    characters of text in all (the last one shown cut between words)."""
    if not passages:
        return NOTHING
    parts: list[str] = []
    left = budget
    for p in passages:
        where = f"[{p.path}" + (f" — {p.heading}]" if p.heading else "]")
        room = left - len(where) - 1
        if room < 80:
            break
        text = p.text if len(p.text) <= room else _cut(p.text, room)
        parts.append(f"{where}\n{text}")
        left -= len(where) + 1 + len(text) + 2
    return "\n\n".join(parts)


def _cut(text: str, room: int) -> str:
    """``text`` cut to ``room`` characters, between words where it can, with an ellipsis."""
    end = text.rfind(" ", room // 2, room - 1)
    return text[: end if end > 0 else room - 1].rstrip() + "…"
