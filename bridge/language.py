"""A first guess at the customer's language until the knowledge base's detector takes over."""

from __future__ import annotations

import re

_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")


def guess_language(text: str, hint: str | None = None) -> str | None:
    """'ru' or 'en' from the script the text is written in; the network's hint when it is mixed."""
    cyrillic = len(_CYRILLIC.findall(text))
    latin = len(_LATIN.findall(text))
    if cyrillic > latin:
        return "ru"
    if latin > cyrillic:
        return "en"
    return hint if hint in ("ru", "en") else None
