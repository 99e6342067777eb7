"""The inbox in Russian or English: gettext catalogs (`locale/<lang>/LC_MESSAGES/messages.po`,
kept with Babel), compiled in memory at start-up so no binary file lives in the repository.
Each request sets the language of the agent who makes it."""

from __future__ import annotations

import contextvars
import io
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"

_current = contextvars.ContextVar("language", default=DEFAULT_LANGUAGE)


def _load(language: str) -> NullTranslations:
    po = resources.files(__package__).joinpath("locale", language, "LC_MESSAGES", "messages.po")
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


_catalogs = {language: _load(language) for language in LANGUAGES}


def use_language(language: str | None) -> None:
    _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return _catalogs[_current.get()].ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogs[_current.get()].ungettext(singular, plural, n)
