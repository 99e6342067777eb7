"""The inbox speaks Russian: every text of its pages has a translation in the catalog."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import REPO

WEB = REPO / "bridge" / "web"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def test_every_text_of_the_inbox_has_a_russian_translation() -> None:
    texts = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(WEB), METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None}
        )
    }
    with (WEB / "locale" / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale="ru")

    assert len(texts) > 50, "the extraction found the pages' texts"
    untranslated = sorted(t for t in texts if not (catalog.get(t) and catalog.get(t).string))
    assert untranslated == []
