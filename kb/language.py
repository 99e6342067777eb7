"""Which language a customer writes in: Russian or English."""

from __future__ import annotations

import re

from kb.normalize import tokens

LANGUAGES = ("ru", "en")
_CYRILLIC_WORD = re.compile(r"[а-я]")
_LATIN_WORD = re.compile(r"[a-z]")


def detect_language(text: str, hint: str | None = None) -> str | None:
    """'ru' or 'en' from the words' scripts, else the hint (the network's locale), else None.

    Russian speakers often write brand names in Latin ("не работает wi-fi роутер"), English
    speakers hardly ever write Cyrillic: so a third of Cyrillic words is enough for 'ru'.
    """
    words = tokens(text)
    cyrillic = sum(1 for word in words if _CYRILLIC_WORD.search(word))
    latin = sum(1 for word in words if _LATIN_WORD.search(word) and not _CYRILLIC_WORD.search(word))
    if cyrillic and 2 * cyrillic >= latin:
        return "ru"
    if latin:
        return "en"
    return hint if hint in LANGUAGES else None
