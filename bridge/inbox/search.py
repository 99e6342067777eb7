"""Finding conversations: by the words written in them (Russian and English, any word form), by
the customer's name, or by their id on the network.

PostgreSQL keeps each conversation's words as the `russian` text-search configuration stems
them (Latin words as English) in `conversation_words` (migration 0020): a conversation is found
when every word of the query is written somewhere in it. SQLite keeps the messages' text as
trigrams (FTS5); a word matches there when its Snowball stem appears in a message, so "заказов"
finds "заказ" and "заказа", "delivered" finds "delivery".
"""

from __future__ import annotations

import re

import sqlalchemy as sa
import Stemmer
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.models import conversations, identities, messages

MAX_QUERY_LENGTH = 200
_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[а-я]")
# a trigram index cannot look for fewer characters than three
_SHORTEST = 3
_STEMMERS = {"ru": Stemmer.Stemmer("russian"), "en": Stemmer.Stemmer("english")}
_message_search = sa.table("message_search", sa.column("rowid"), sa.column("message_search"))
_conversation_words = sa.table(
    "conversation_words", sa.column("word", sa.Text), sa.column("conversation_id", sa.Integer)
)


def search_words(text: str | None) -> str | None:
    """What an agent typed into the search box: None when blank; too long is refused. Control
    characters are spaces (PostgreSQL refuses a NUL in text)."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text or "")
    words = " ".join(printable.split())
    if len(words) > MAX_QUERY_LENGTH:
        raise ValueError(f"q: at most {MAX_QUERY_LENGTH} characters")
    return words or None


async def matching(conn: AsyncConnection, query: str) -> sa.ColumnElement[bool]:
    """The conversations the query finds (the caller has checked it is not blank)."""
    searched = conversations.alias("searched")
    found = [sa.select(searched.c.id).where(searched.c.identity_id.in_(identities_found(query)))]
    if conn.dialect.name == "postgresql":
        with_each = [_conversations_with_word(word) for word in await _lexemes(conn, query)]
    else:
        with_each = [_conversations_with_stem(stem) for stem in _stems(query)]
    if with_each:
        # SQLite takes no compound select in brackets: the intersection is read as a table
        in_all = sa.intersect(*with_each).subquery()
        found.append(sa.select(in_all.c.conversation_id))
    # one IN over a union, not an OR of two INs: PostgreSQL runs an OR'd subquery too big to
    # hash once for every conversation
    return conversations.c.id.in_(sa.union(*found))


def identities_found(query: str) -> sa.Select[int]:
    """The customers' identities whose name holds the query, or whose id on the network it is."""
    i = identities.c
    name = query.strip()
    pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return sa.select(i.id).where(
        sa.or_(i.display_name.ilike(pattern, escape="\\"), i.external_user_id == name)
    )


async def _lexemes(conn: AsyncConnection, query: str) -> list[str]:
    """PostgreSQL: the query's words as the trigger of migration 0020 stems the messages' (stop
    words left out). Asked first, so that the planner sees how common each word is."""
    words = sa.func.tsvector_to_array(sa.func.to_tsvector(sa.literal_column("'russian'"), query))
    return list((await conn.execute(sa.select(words))).scalar_one())


def _conversations_with_word(word: str) -> sa.Select[int]:
    """PostgreSQL: the conversations in whose messages `word` (a lexeme) is written."""
    return sa.select(_conversation_words.c.conversation_id).where(
        _conversation_words.c.word == word
    )


def _conversations_with_stem(stem: str) -> sa.Select[int]:
    """SQLite: the conversations in whose messages `stem` is written."""
    m, found = messages.c, _message_search.c
    return sa.select(m.conversation_id).where(
        m.id.in_(sa.select(found.rowid).where(found.message_search.op("MATCH")(f'"{stem}"')))
    )


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
