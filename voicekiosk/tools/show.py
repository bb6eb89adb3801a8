"""The built-in ``show`` tool: put on the page, beside the captions, an image from the knowledge
folder, a short card of text, or a link as a QR code (made here: the page loads nothing from
elsewhere). Only files inside the folder, image types only, size-capped; the page clears what is
shown when the conversation moves on."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from voicekiosk.images import raster_type
from voicekiosk.tools.base import Caller, ToolError

MAX_IMAGE = 1024 * 1024  # bytes: a map or a photo for a screen, not a poster
MAX_TITLE, MAX_TEXT, MAX_LINES, MAX_LINK = 80, 400, 6, 500
MAX_LISTED = 12  # image names offered to the model when the one it asked for is not there
# Suffix -> media type; the file's first bytes must agree (``images.raster_type``).
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "maxLength": 200, "description": "File name of an image in the venue's folder."},
        "title": {"type": "string", "maxLength": MAX_TITLE, "description": "A short title for a card."},
        "text": {"type": "string", "maxLength": MAX_TEXT, "description": f"At most {MAX_LINES} short lines."},
        "link": {"type": "string", "maxLength": MAX_LINK, "description": "An https:// address, shown as a QR code."},
    },
    "additionalProperties": False,
}


class ShowTool:
    """``show``; ``folder``: the knowledge folder its images come from (None: cards and links only)."""

    name = "show"
    description = (
        "Show the visitor something on the screen beside the conversation: an image from the venue's "
        "folder (a map, a photo), a short card (title and a few lines), and/or a link as a QR code to scan. "
        "It stays until the visitor speaks again after your answer."
    )
    source = "built-in"
    timeout = 5.0

    def __init__(self, folder: Path | None) -> None:
        self.parameters: Mapping[str, Any] = PARAMETERS
        self.folder = folder.resolve() if folder is not None else None

    async def run(self, arguments: dict[str, Any]) -> str:
        raise ToolError("show works only during a call.")

    async def run_in(self, caller: Caller, arguments: dict[str, Any]) -> str:
        image, title, text, link = (arguments.get(k) for k in ("image", "title", "text", "link"))
        if not (image or title or text or link):
            raise ToolError("Give an image, a title and text, or a link to show.")
        event: dict[str, Any] = {"type": "show", "title": title or None, "text": _lines(text), "link": None}
        shown = []
        if image:
            event["image"], event["alt"] = await asyncio.to_thread(self.image, image), PurePosixPath(image).name
            shown.append(f"the image {image}")
        if title or text:
            shown.append(f"a card titled {title!r}" if title else "a card of text")
        if link:
            event["qr"], event["link"] = await asyncio.to_thread(qr_code, link), link  # ~4 ms: off the loop
            shown.append(f"a QR code for {link}")
        if not caller.tell_page(event):
            raise ToolError("Nothing was shown: no screen is connected to this call right now.")
        return f"On the screen now: {', '.join(shown)}. It goes away when the visitor speaks after your answer."

    def image(self, name: str) -> str:
        """The image ``name`` (a path inside the folder) as a ``data:`` URI.

        Raises:
          ToolError: no folder, a name that leaves it (``..``, absolute, a symlink out), not an
            image type, too large, or no such file (the folder's images are listed).
        """
        if self.folder is None:
            raise ToolError("There is no folder of images to show from.")
        path = _inside(self.folder, name)
        mime = IMAGE_TYPES.get(path.suffix.lower()) if path is not None else None
        if path is None or mime is None:
            raise ToolError(f"{_said(name)} is not an image in the venue's folder (png, jpeg, gif or webp).")
        if not path.is_file():
            raise ToolError(f"There is no image called {_said(name)}. {self._listing()}")
        with path.open("rb") as file:
            data = file.read(MAX_IMAGE + 1)
        if len(data) > MAX_IMAGE:
            raise ToolError(f"{_said(name)} is too large to show (over {MAX_IMAGE // 1024} KB).")
        if raster_type(data) != mime:
            raise ToolError(f"{_said(name)} is not a {mime.split('/')[1]} image.")
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def _listing(self) -> str:
        assert self.folder is not None
        names: list[str] = []
        for root, dirs, files in os.walk(self.folder):  # symlinked folders are not followed
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(files):
                path = Path(root, file)
                if path.suffix.lower() in IMAGE_TYPES and _inside(self.folder, str(path.relative_to(self.folder))):
                    names.append(path.relative_to(self.folder).as_posix())
            if len(names) >= MAX_LISTED:
                break
        return f"Images there: {', '.join(names[:MAX_LISTED])}." if names else "The folder has no images."


def qr_code(link: str) -> str:
    """``link`` (http or https) as a QR code, an SVG ``data:`` URI (made with segno, as the
    terminal's codes are).

    Raises:
      ToolError: not an http(s) address, or one with spaces or control characters.
    """
    import segno

    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.hostname or not link.isprintable() or " " in link:
        raise ToolError("The link must be an http:// or https:// address.")
    return str(segno.make(link, error="m", boost_error=False).svg_data_uri(scale=8, border=2))


def _inside(folder: Path, name: str) -> Path | None:
    """``folder/name`` if it is a relative path that stays inside ``folder`` once resolved (no
    ``..``, no hidden part, no symlink out), else None."""
    rel = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name or rel.is_absolute() or any(p.startswith(".") for p in rel.parts):
        return None
    path = (folder / rel).resolve()
    return path if path.is_relative_to(folder) else None


def _lines(text: Any) -> str | None:
    """A card's text: at most ``MAX_LINES`` non-empty lines."""
    if not isinstance(text, str):
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:MAX_LINES]) or None


def _said(name: str) -> str:
    """A name from the model, quoted and short, fit to give back to it."""
    return repr(name[:80])
