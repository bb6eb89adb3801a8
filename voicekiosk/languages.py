"""The page's languages: one flat JSON table of words per language in ``static/i18n/`` (the page
fetches the others from there), read here too, so the first paint, the page's config and what the
agent is told come from the same files. A language is shipped when its table is there.

Adding a word: the same key in every table (``tests/test_languages.py`` checks it), then
``t("key")`` in a static module or ``data-i18n="key"`` in a template.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any


def table_dir() -> Path:
    from voicekiosk.web.assets import asset_dir  # the wheel's static/ or the checkout's

    return asset_dir("static") / "i18n"


@cache
def shipped() -> tuple[str, ...]:
    """The codes we ship a table for, sorted."""
    return tuple(sorted(path.stem for path in table_dir().glob("*.json")))


@cache
def table(code: str) -> dict[str, str]:
    """The words of language ``code`` (one of ``shipped()``), by key."""
    if code not in shipped():
        raise KeyError(code)
    data: Any = json.loads((table_dir() / f"{code}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"static/i18n/{code}.json must be one flat object of strings")
    return data


def translate(code: str, key: str, **values: object) -> str:
    """The words for ``key`` in language ``code``, ``{name}`` placeholders filled (as i18n.js does)."""
    text = table(code).get(key, key)
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def check_codes(codes: Sequence[str]) -> tuple[str, ...]:
    """``codes`` cleaned (lower case, no repeats), or a ValueError naming the first we have no table for."""
    cleaned = tuple(dict.fromkeys(str(code).strip().lower() for code in codes if str(code).strip()))
    if not cleaned:
        raise ValueError("name at least one language")
    for code in cleaned:
        if code not in shipped():
            raise ValueError(f"{code!r} has no translation table (shipped: {', '.join(shipped())})")
    return cleaned


def page_languages(codes: Sequence[str]) -> list[dict[str, str]]:
    """Each language for the page: its code and its name in its own words."""
    return [{"code": code, "name": translate(code, "language.name")} for code in codes]


def invitations(codes: Sequence[str]) -> list[dict[str, str]]:
    """The attract screen's invitations, a ``{lang, tap, say}`` for each language in order (its
    ``lang`` lets a screen reader say it in that language's voice)."""
    return [
        {"lang": code, "tap": translate(code, "attract.tap"), "say": translate(code, "attract.say")} for code in codes
    ]


def english_name(code: str) -> str:
    """How the agent's (English) instructions name a language."""
    return translate(code, "language.english")
