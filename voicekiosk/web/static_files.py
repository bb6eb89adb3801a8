"""The page's static files, served from memory with validators.

A page load asks for eight small files at once, on the connect-time critical path. aiohttp's
file handler opens and stats each one in a thread; these are a few KB each, so they are kept
in memory and re-read only when the file on disk changes (edits show up at once in ``make dev``).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import stat
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web


def etag(digest: bytes) -> str:
    """An ``ETag`` from the body's SHA-256."""
    return '"' + digest.hex()[:20] + '"'


def from_memory(
    request: web.Request, body: bytes, content_type: str, tag: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``body`` with its validator, or 304 when the browser has it already."""
    headers = (headers or {}) | {"ETag": tag}
    if request.headers.get("If-None-Match") == tag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)


@dataclass(frozen=True)
class StaticFile:
    stamp: tuple[int, int]  # (mtime_ns, size) of the file it was read from
    body: bytes
    content_type: str
    etag: str
    csp_hash: str  # "'sha256-…'": pins this file's text, inlined in a page, in a CSP

    @classmethod
    def read(cls, path: Path, stamp: tuple[int, int]) -> StaticFile:
        body = path.read_bytes()
        digest = hashlib.sha256(body).digest()  # once, for both validators
        return cls(
            stamp,
            body,
            mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            etag=etag(digest),
            csp_hash="'sha256-" + base64.b64encode(digest).decode() + "'",
        )


class StaticFiles:
    """A GET handler for ``/static/{name}``: only regular files directly under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, StaticFile] = {}

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        entry = self.get(name)
        if entry is None:
            raise web.HTTPNotFound()
        return from_memory(request, entry.body, entry.content_type, entry.etag)

    def get(self, name: str) -> StaticFile | None:
        """The file ``name`` directly under the root, re-read only when it changed on disk."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            return None
        path = self.root / name
        try:
            info = path.stat()
        except (OSError, ValueError):  # ValueError: a NUL byte in the name
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        entry = self._cache.get(name)
        if entry is None or entry.stamp != stamp:
            entry = self._cache[name] = StaticFile.read(path, stamp)
        return entry
