"""The knowledge folder and ``lookup``, on real files and a real SQLite index: passages found and
named by file, edits and deletions seen at the next lookup, hostile queries answered, files that
are not knowledge left out, and an index that survives a restart without being rebuilt."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from voicekiosk.tools.knowledge import MAX_FILE
from voicekiosk.tools.lookup import MAX_ANSWER, NOTHING, LookupTool, answer
from voicekiosk.tools.passages import MAX_WORDS, match_expression, split
from voicekiosk.tools.runner import ToolRunner

HOURS = """# Opening hours

The museum is open from Tuesday to Sunday, 10:00 to 18:00.

## Holidays

Closed on the first of January and on Christmas Day.
"""
ROOMS = "Room 204 is on the second floor, past the cafeteria, next to the lifts.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "desk-knowledge"
    (folder / "floors").mkdir(parents=True)
    (folder / "hours.md").write_text(HOURS)
    (folder / "floors" / "rooms.txt").write_text(ROOMS)
    return folder


@pytest.fixture
async def lookup(folder: Path, tmp_path: Path):
    tool = LookupTool(folder, tmp_path / "data")
    await tool.start()
    yield tool
    tool.close()


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on, as an editor saving a minute later would."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 60 * 10**9, before + 60 * 10**9))


async def test_finds_a_passage_and_names_its_file(lookup: LookupTool) -> None:
    found = await lookup.run({"query": "where is room 204?"})
    assert found.startswith("[floors/rooms.txt]\nRoom 204 is on the second floor")

    found = await lookup.run({"query": "When are you closed for the holidays?", "limit": 1})
    assert found == "[hours.md — Holidays]\nClosed on the first of January and on Christmas Day."

    assert await lookup.run({"query": "parking for bicycles"}) == NOTHING


async def test_an_edited_file_is_reindexed_at_the_next_lookup(lookup: LookupTool, folder: Path) -> None:
    assert "Christmas" in await lookup.run({"query": "Christmas"})
    rewrite(folder / "hours.md", "# Opening hours\n\nOpen every day in summer, including Easter Monday.\n")

    assert await lookup.run({"query": "Christmas"}) == NOTHING
    assert "Easter Monday" in await lookup.run({"query": "easter"})
    assert lookup.knowledge.indexed == 3  # two at the start, then only the edited one


async def test_added_and_deleted_files(lookup: LookupTool, folder: Path) -> None:
    (folder / "floors" / "rooms.txt").unlink()
    assert await lookup.run({"query": "room 204"}) == NOTHING

    (folder / "events.md").write_text("# Today\n\nA concert in the great hall at 16:00.\n")
    assert "[events.md — Today]\nA concert" in await lookup.run({"query": "concert"})
    rows = lookup.knowledge._conn.execute("SELECT path FROM passages").fetchall()
    assert sorted(r[0] for r in rows) == ["events.md", "hours.md", "hours.md"]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "NEAR(",
        "OR OR",
        'room" OR 204 NOT "',
        "AND",
        "^room",
        "heading: room",
        "{heading body}: room",
        "x" * 10_000,
        "room " * 2_000,
        "\x00\x1b[2J\x7f\u202e room",
        "",
        "   ",
        "é ü ß 東京",
    ],
)
async def test_hostile_queries_are_answered(lookup: LookupTool, query: str) -> None:
    result = await lookup.run({"query": query})
    assert isinstance(result, str) and result
    if "room" in query:
        assert "Room 204" in result


def test_queries_are_only_quoted_words() -> None:
    assert match_expression('room" OR NEAR(204 *') == '"room" OR "OR" OR "NEAR" OR "204"'
    assert match_expression("\x00 * ( ) ^") == ""
    assert match_expression("w" * 10_000).count('"') == 2
    assert len(match_expression(" ".join(f"w{i}" for i in range(1000))).split(" OR ")) == 32


async def test_files_that_are_not_knowledge_are_skipped(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("the wifi password is hunter2\n")
    (folder / "leak.md").symlink_to(outside)
    (folder / "inside-link.md").symlink_to(folder / "hours.md")
    (folder / "loop").symlink_to(folder)  # a link loop is walked once
    (folder / ".hidden.md").write_text("hunter2 hidden\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "notes.md").write_text("hunter2 in a hidden folder\n")
    (folder / "big.txt").write_text("hunter2 " * (MAX_FILE // 8 + 1))
    (folder / "binary.txt").write_bytes(b"hunter2\x00\x01\x02" * 100)
    (folder / "image.png").write_bytes(b"\x89PNG hunter2")
    (folder / "latin1.txt").write_bytes("Caf\xe9 hunter3 opens at nine\n".encode("latin-1"))
    (folder / "evil\x1b[2Jname.md").symlink_to(outside)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n hunter2 and nothing a PDF has\n")

    tool = LookupTool(folder, tmp_path / "data")
    with caplog.at_level(logging.INFO, "voicekiosk.tools"):
        await tool.start()
    try:
        assert await tool.run({"query": "hunter2"}) == NOTHING
        assert "Caf\ufffd hunter3" in await tool.run({"query": "hunter3"})  # not UTF-8: decoded with replacement
        christmas = await tool.run({"query": "Christmas", "limit": 8})
        assert christmas.count("[") == 2 and "[inside-link.md — Holidays]" in christmas  # not loop/hours.md
        assert "\x1b" not in caplog.text and "evil\\x1b[2Jname.md" in caplog.text
        assert "'leak.md' (a link out of the folder)" in caplog.text
        assert "'broken.pdf' (not a PDF that can be read" in caplog.text
        # The binary file is remembered, so it is not read again at every lookup.
        indexed = tool.knowledge.indexed
        await tool.run({"query": "anything"})
        assert tool.knowledge.indexed == indexed
    finally:
        tool.close()


async def test_the_index_survives_a_restart(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = LookupTool(folder, data)
    assert await first.start() == 2
    first.close()

    again = LookupTool(folder, data)
    assert await again.start() == 0  # reopened, not rebuilt
    assert "Room 204" in await again.run({"query": "room 204"})
    again.close()
    rewrite(folder / "hours.md", "# Hours\n\nLate opening on Thursdays.\n")

    third = LookupTool(folder, data)
    assert await third.start() == 1  # only what changed while it was stopped
    assert "Thursdays" in await third.run({"query": "late opening"})
    third.close()
    assert stat.S_IMODE((data / "knowledge.sqlite3").stat().st_mode) == 0o600


async def test_a_broken_or_foreign_index_is_rebuilt(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "knowledge.sqlite3").write_bytes(b"not a database at all" * 100)
    tool = LookupTool(folder, data)
    assert await tool.start() == 2
    tool.close()

    other = tmp_path / "other"
    other.mkdir()
    (other / "a.md").write_text("Another venue's rules.\n")
    tool = LookupTool(other, data)  # another folder: its index replaces the first
    assert await tool.start() == 1
    assert await tool.run({"query": "room"}) == NOTHING
    tool.close()

    conn = sqlite3.connect(data / "knowledge.sqlite3")
    conn.execute("PRAGMA user_version = 99")  # an older or newer voicekiosk's index
    conn.close()
    tool = LookupTool(other, data)
    assert await tool.start() == 1
    tool.close()


async def test_through_the_runner(lookup: LookupTool) -> None:
    runner = ToolRunner([lookup])
    outcome = await runner.call("lookup", json.dumps({"query": "room 204", "limit": 2}))
    assert outcome.ok and "[floors/rooms.txt]" in outcome.output

    for bad in ({}, {"query": 204}, {"query": "room", "limit": 0}, {"query": "room", "limit": 9}, {"q": "x"}):
        outcome = await runner.call("lookup", json.dumps(bad))
        assert not outcome.ok and "Invalid arguments for lookup" in json.loads(outcome.output)["error"]

    outcome = await runner.call("lookup", json.dumps({"query": '"NEAR(' + "x" * 10_000}))
    assert outcome.ok and outcome.output == NOTHING


def test_passages_are_split_by_heading_and_bounded() -> None:
    words = " ".join(f"w{i}" for i in range(MAX_WORDS * 2 + 5))
    text = f"Intro line.\n\n# First\n\nOne.\n\nTwo.\n\n## Second ##\n\n{words}\n"
    passages = list(split(text))
    assert passages[:2] == [("", "Intro line."), ("First", "One. Two.")]
    assert [h for h, _ in passages[2:]] == ["Second"] * 3
    assert all(len(p.split()) <= MAX_WORDS for _, p in passages)


def test_the_answer_is_bounded() -> None:
    from voicekiosk.tools.knowledge import Passage

    many = [Passage(f"f{i}.md", "Heading", "word " * 300) for i in range(8)]
    text = answer(many)
    assert len(text) <= MAX_ANSWER
    assert text.startswith("[f0.md — Heading]\nword") and text.endswith("…")


def make_pdf(pages: list[str]) -> bytes:
    """A minimal PDF with one line of Helvetica text per page, written by hand (offsets and all)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
            "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


async def test_pdfs_are_searched_by_page(folder: Path, tmp_path: Path) -> None:
    (folder / "guide.pdf").write_bytes(make_pdf(["Welcome to the museum", "The sculpture garden opens at noon"]))
    tool = LookupTool(folder, tmp_path / "data")
    try:
        assert await tool.start() == 3
        assert (
            await tool.run({"query": "sculpture garden"}) == "[guide.pdf — page 2]\nThe sculpture garden opens at noon"
        )
    finally:
        tool.close()
