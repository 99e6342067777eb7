"""message search: the inbox finds conversations by the words written in them

PostgreSQL: a GIN index over the messages' text as the `russian` text-search configuration sees
it (Russian words stemmed by Snowball, Latin ones by the English stemmer, ё as е). SQLite: an
FTS5 table of trigrams kept by triggers (ё stored as е), searched by the stems of the words.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# the text as the search table keeps it: ё is е, whatever the customer typed
_FOLDED = "replace(replace({0}.text, 'ё', 'е'), 'Ё', 'Е')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_messages_search ON messages USING gin (to_tsvector('russian', text))"
        )
        return
    op.execute("CREATE VIRTUAL TABLE message_search USING fts5(text, tokenize = 'trigram')")
    op.execute(
        "CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN "
        f"INSERT INTO message_search (rowid, text) VALUES (new.id, {_FOLDED.format('new')}); END"
    )
    op.execute(
        "CREATE TRIGGER message_search_update AFTER UPDATE OF text ON messages BEGIN "
        f"UPDATE message_search SET text = {_FOLDED.format('new')} WHERE rowid = new.id; END"
    )
    op.execute(
        "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN "
        "DELETE FROM message_search WHERE rowid = old.id; END"
    )
    op.execute(
        "INSERT INTO message_search (rowid, text) "
        f"SELECT id, {_FOLDED.format('messages')} FROM messages"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_messages_search")
        return
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER message_search_{trigger}")
    op.execute("DROP TABLE message_search")
