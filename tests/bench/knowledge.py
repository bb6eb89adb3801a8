"""``lookup`` over a generated knowledge folder: the first index, and searches (each with the stat
walk that finds changed files) through the tool as the runner calls it."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from voicekiosk.tools.lookup import LookupTool

DOCUMENTS = 1000
VOCABULARY = (  # 100 words: every query matches many passages (a hard case for bm25)
    "museum hall room floor lift stairs cafe shop ticket guide tour map exhibit painting sculpture garden "
    "entrance exit toilet cloakroom locker wheelchair pram dog parking bicycle bus tram station concert "
    "lecture workshop school family child adult student senior member free price euro card cash open "
    "closed monday tuesday wednesday thursday friday saturday sunday morning evening holiday summer winter"
)
WORDS = VOCABULARY.split()


def make_folder(folder: Path, documents: int, seed: int = 11) -> None:
    """``documents`` Markdown files of a few sections each (about 400 words a file), in subfolders."""
    rng = random.Random(seed)
    for i in range(documents):
        sub = folder / f"part{i % 20:02d}"
        sub.mkdir(exist_ok=True)
        sections = []
        for s in range(rng.randint(2, 5)):
            paragraphs = [" ".join(rng.choices(WORDS, k=rng.randint(20, 60))) + "." for _ in range(rng.randint(1, 3))]
            sections.append(f"## Section {s} {rng.choice(WORDS)}\n\n" + "\n\n".join(paragraphs))
        (sub / f"doc{i:04d}.md").write_text(f"# Document {i}\n\n" + "\n\n".join(sections) + "\n")


async def bench_lookup(documents: int = DOCUMENTS, searches: int = 500) -> dict[str, Any]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        folder, data = Path(tmp) / "knowledge", Path(tmp) / "data"
        folder.mkdir()
        make_folder(folder, documents)
        tool = LookupTool(folder, data)
        try:
            started = time.perf_counter()
            indexed = await tool.start()
            index_s = time.perf_counter() - started
            assert indexed == documents, indexed
            times = []
            for _ in range(searches):
                query = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
                started = time.perf_counter()
                await tool.run({"query": query, "limit": 3})
                times.append((time.perf_counter() - started) * 1000)
            assert tool.knowledge.indexed == documents  # nothing changed: nothing re-indexed
        finally:
            tool.close()
        restart = LookupTool(folder, data)
        try:
            started = time.perf_counter()
            assert await restart.start() == 0
            reopen_s = time.perf_counter() - started
        finally:
            restart.close()
    cuts = statistics.quantiles(times, n=100)
    return {
        "documents": documents,
        "index_s": index_s,
        "reopen_s": reopen_s,
        "p50_ms": statistics.median(times),
        "p99_ms": cuts[98],
    }
