"""Finding conversations: by the words written in them (Russian and English, any word form), by
the customer's name, or by their id on the network.

PostgreSQL matches the messages' text with the `russian` text-search configuration (it stems
Latin words as English), through the GIN index of migration 0013. SQLite keeps the text as
trigrams (FTS5); a word matches there when its Snowball stem appears in a message, so "заказов"
finds "заказ" and "заказа", "delivered" finds "delivery".
"""

from __future__ import annotations

import re

import sqlalchemy as sa
import Stemmer

from bridge.store.models import conversations, identities, messages

MAX_QUERY_LENGTH = 200
_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[а-я]")
# a trigram index cannot look for fewer characters than three
_SHORTEST = 3
_STEMMERS = {"ru": Stemmer.Stemmer("russian"), "en": Stemmer.Stemmer("english")}
_message_search = sa.table("message_search", sa.column("rowid"), sa.column("message_search"))


def search_words(text: str | None) -> str | None:
    """What an agent typed into the search box: None when blank; too long is refused. Control
    characters are spaces (PostgreSQL refuses a NUL in text)."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text or "")
    words = " ".join(printable.split())
    if len(words) > MAX_QUERY_LENGTH:
        raise ValueError(f"q: at most {MAX_QUERY_LENGTH} characters")
    return words or None


def matching(dialect: str, query: str) -> sa.ColumnElement[bool]:
    """The conversations the query finds (the caller has checked it is not blank)."""
    i, m = identities.c, messages.c
    name = query.strip()
    pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    customers = sa.select(i.id).where(
        sa.or_(i.display_name.ilike(pattern, escape="\\"), i.external_user_id == name)
    )
    searched = conversations.alias("searched")
    found = [sa.select(searched.c.id).where(searched.c.identity_id.in_(customers))]
    words = _text_match(dialect, query)
    if words is not None:
        found.append(sa.select(m.conversation_id).where(words))
    # one IN over a union, not an OR of two INs: PostgreSQL runs an OR'd subquery too big to
    # hash once for every conversation
    return conversations.c.id.in_(sa.union(*found))


def _text_match(dialect: str, query: str) -> sa.ColumnElement[bool] | None:
    if dialect == "postgresql":
        # the configuration as a literal: the index is used only for the same expression
        vector = sa.func.to_tsvector(sa.literal_column("'russian'"), messages.c.text)
        return vector.op("@@")(sa.func.plainto_tsquery(sa.literal_column("'russian'"), query))
    stems = [f'"{stem}"' for stem in _stems(query)]
    if not stems:
        return None
    matched = sa.select(_message_search.c.rowid).where(
        _message_search.c.message_search.op("MATCH")(" AND ".join(stems))
    )
    return messages.c.id.in_(matched)


def _stems(query: str) -> list[str]:
    """Each word's stem (or the word, when its stem is too short to look for); words too short
    to look for are left out."""
    found = []
    for word in _WORD.findall(query.lower().replace("ё", "е")):
        language = "ru" if _CYRILLIC.search(word) else "en"
        stem = str(_STEMMERS[language].stemWord(word))
        if len(stem) >= _SHORTEST:
            found.append(stem)
        elif len(word) >= _SHORTEST:
            found.append(word)
    return found
