"""What kind of image some bytes are, from their first bytes (never from a file's name): the one
check behind the ``show`` tool's pictures and the venue's logo."""

from __future__ import annotations

SIGNATURES = (  # (media type, how the file starts)
    ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ("image/jpeg", (b"\xff\xd8\xff",)),
    ("image/gif", (b"GIF87a", b"GIF89a")),
    ("image/webp", (b"RIFF",)),  # and "WEBP" at byte 8
)


def raster_type(body: bytes) -> str | None:
    """``image/png``, ``image/jpeg``, ``image/gif`` or ``image/webp`` if ``body`` is one, else None."""
    for media_type, starts in SIGNATURES:
        if body.startswith(starts) and (media_type != "image/webp" or body[8:12] == b"WEBP"):
            return media_type
    return None
