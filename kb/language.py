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
    cyrillic = latin = 0
    for word in tokens(text):
        if _CYRILLIC_WORD.search(word):
            cyrillic += 1
        elif _LATIN_WORD.search(word):
            latin += 1
    if cyrillic and 2 * cyrillic >= latin:
        return "ru"
    if latin:
        return "en"
    return hint if hint in LANGUAGES else None
