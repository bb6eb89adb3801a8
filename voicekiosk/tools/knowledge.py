"""The knowledge folder's full-text index: its ``.md``, ``.txt`` and ``.pdf`` files split into passages (by
heading and paragraph) and kept in SQLite FTS5 in the data directory. ``refresh`` stats the folder
and re-indexes only the files that changed, so it is cheap enough to run before every search.

The index is a cache: a file of another schema version, another folder or a broken one is rebuilt.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from voicekiosk.errors import StartupError
from voicekiosk.logsafe import escape
from voicekiosk.tools.index_db import PER_FILE, SCHEMA, check_fts5, create, drop_passages, meta, transaction, unlink_all
from voicekiosk.tools.passages import match_expression, split
from voicekiosk.tools.pdf import PdfError, pdf_passages

log = logging.getLogger("voicekiosk.tools")

SUFFIXES = (".md", ".markdown", ".txt", ".pdf")
MAX_FILE = 1024 * 1024  # bytes: a bigger text file is not desk knowledge (a log, a dump), and is skipped
MAX_PDF = 20 * 1024 * 1024  # bytes of a PDF (pictures make them big)
MAX_FILES = 20_000  # files looked at in one walk
MAX_DEPTH = 16  # folders deep


@dataclass(frozen=True)
class Passage:
    """One search hit: the file (relative to the folder), the heading it is under, its text."""

    path: str
    heading: str
    text: str


class _Stat(NamedTuple):  # a tuple: compared 1,000 times a lookup
    mtime_ns: int
    size: int
    ino: int


class Knowledge:
    """The index of ``folder`` in the SQLite file ``db``; safe to use from several threads.

    Raises:
      StartupError: SQLite here has no FTS5, or ``db`` cannot be opened.
    """

    def __init__(self, folder: Path, db: Path) -> None:
        self.folder = folder.resolve()
        self.db = db
        self.indexed = 0  # files (re-)indexed since this was made: a restart that changed nothing adds none
        self._lock = threading.Lock()
        self._skipped: set[str] = set()  # files already logged as skipped (said once, not at every lookup)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:  # not a database, or a broken one: it is only a cache
            log.warning("knowledge index %s is unreadable (%s): rebuilding it", escape(str(db)), exc)
            unlink_all(db)
            self._conn = self._open()
        self._known = {  # the files table, kept in memory: what a refresh compares the walk with
            path: (file_id, _Stat(mtime, size, ino))
            for file_id, path, mtime, size, ino in self._conn.execute("SELECT id, path, mtime_ns, size, ino FROM files")
        }

    def _open(self) -> sqlite3.Connection:
        try:
            fd = os.open(self.db, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
            conn = sqlite3.connect(self.db, timeout=5, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.OperationalError) as exc:
            raise StartupError(f"[knowledge]: cannot open the index {self.db}: {exc}") from None
        try:
            check_fts5(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last change to a power cut is fine
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            folder = meta(conn, "folder") if version == SCHEMA else None
            if version != SCHEMA or folder != str(self.folder):
                create(conn, str(self.folder))
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def refresh(self) -> int:
        """Bring the index up to date with the folder; the number of files (re-)indexed."""
        with self._lock:
            return self._refresh()

    def search(self, query: str, limit: int) -> list[Passage]:
        """The ``limit`` best passages for the words of ``query`` (any text: it is never FTS5 syntax)."""
        with self._lock:
            self._refresh()
            expression = match_expression(query)
            if not expression:
                return []
            rows = self._conn.execute(
                "SELECT path, heading, body FROM passages WHERE passages MATCH ? "
                "ORDER BY bm25(passages, 0.0, 2.0, 1.0) LIMIT ?",
                (expression, limit),
            ).fetchall()
        return [Passage(*row) for row in rows]

    def _refresh(self) -> int:
        known = self._known
        seen: set[str] = set()
        changed = 0
        for path, full, stat in self._walk():
            seen.add(path)
            old = known.get(path)
            if old is not None and old[1] == stat:
                continue
            self._index(path, full, stat, old[0] if old else None)
            changed += 1
        gone = [(file_id, path) for path, (file_id, _) in known.items() if path not in seen]
        if gone:
            with transaction(self._conn):
                for file_id, _path in gone:
                    drop_passages(self._conn, file_id)
                    self._conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
            for _file_id, path in gone:
                del known[path]
            log.debug("knowledge: %d file(s) gone", len(gone))
        self.indexed += changed
        return changed

    def _index(self, path: str, full: str, stat: _Stat, file_id: int | None) -> None:
        passages: list[tuple[str, str]] = []  # none for a file that cannot be read: it is recorded all the same,
        try:  # so that it is read again only when it changes
            if path.lower().endswith(".pdf"):
                passages = list(itertools.islice(pdf_passages(full), PER_FILE))
            else:
                passages = self._text(path, full)
        except PdfError as exc:
            self._skip(path, f"not a PDF that can be read: {exc}")
        except OSError as exc:
            self._skip(path, exc.strerror or "unreadable")
        with transaction(self._conn):
            if file_id is None:
                cursor = self._conn.execute(
                    "INSERT INTO files (path, mtime_ns, size, ino) VALUES (?, ?, ?, ?)",
                    (path, stat.mtime_ns, stat.size, stat.ino),
                )
                file_id = int(cursor.lastrowid or 0)
            else:
                drop_passages(self._conn, file_id)
                self._conn.execute(
                    "UPDATE files SET mtime_ns = ?, size = ?, ino = ? WHERE id = ?",
                    (stat.mtime_ns, stat.size, stat.ino, file_id),
                )
            self._conn.executemany(
                "INSERT INTO passages (rowid, path, heading, body) VALUES (?, ?, ?, ?)",
                [(file_id * PER_FILE + n, path, heading, body) for n, (heading, body) in enumerate(passages)],
            )
        self._known[path] = (file_id, stat)

    def _text(self, path: str, full: str) -> list[tuple[str, str]]:
        with open(full, "rb") as f:
            data = f.read(MAX_FILE)
        if b"\0" in data[:8192]:
            self._skip(path, "not text")
            return []
        return list(itertools.islice(split(data.decode("utf-8", errors="replace")), PER_FILE))

    def _walk(self) -> Iterator[tuple[str, str, _Stat]]:
        """``(relative path, path, stat)`` of every file to index; hidden files, other types, files
        too big and links leading out of the folder are left out. Bounded in files and depth; one
        ``stat`` per file to index or folder (this runs before every search)."""
        root = self.folder.stat()
        visited = {(root.st_dev, root.st_ino)}  # folders: each is walked once, link loops or not
        pending: list[tuple[str, str, int]] = [(str(self.folder), "", 0)]  # (folder, its relative path/, depth)
        count = 0
        while pending:
            folder, prefix, depth = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(itertools.islice(listing, MAX_FILES - count + 1))
            except OSError:
                continue
            for entry in entries:
                count += 1
                if count > MAX_FILES:
                    self._skip(".", f"more than {MAX_FILES} files: the rest are not indexed")
                    return
                if entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                try:
                    if entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(self.folder):
                        self._skip(rel, "a link out of the folder")
                        continue
                    if entry.is_dir():
                        info = entry.stat()
                        if depth < MAX_DEPTH and (info.st_dev, info.st_ino) not in visited:
                            visited.add((info.st_dev, info.st_ino))
                            pending.append((entry.path, rel + "/", depth + 1))
                        continue
                    if not (entry.name.lower().endswith(SUFFIXES) and entry.is_file()):
                        continue
                    info = entry.stat()  # follows a link (one that stays inside)
                except (OSError, RuntimeError):  # a dangling link, a loop
                    continue
                if info.st_size > (MAX_PDF if entry.name.lower().endswith(".pdf") else MAX_FILE):
                    self._skip(rel, "too big")
                    continue
                yield rel, entry.path, _Stat(info.st_mtime_ns, info.st_size, info.st_ino)

    def _skip(self, path: str, why: str) -> None:
        if path not in self._skipped and len(self._skipped) < 1000:
            self._skipped.add(path)
            log.info("knowledge: skipped %s (%s)", escape(repr(path)), why)
