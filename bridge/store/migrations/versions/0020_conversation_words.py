"""conversation_words: on PostgreSQL, the inbox's search finds conversations, not messages

Each word (as the `russian` text-search configuration stems it) written in a conversation is
kept once for it, kept up to date by triggers on `messages`. A common word ("заказ" in a third
of a million messages) then costs an index-only scan of the conversations that have it, where
the messages' GIN index (dropped here) fetched every message to learn its conversation. A
customer's name is found through a trigram index. SQLite keeps its FTS5 table of migration 0013.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# A conversation's words from the messages in `source`, in one order for every writer: two
# transactions adding the same words wait for each other, never on each other (no deadlock).
_WORDS_OF = (
    "INSERT INTO conversation_words (word, conversation_id) "
    "SELECT DISTINCT w.word, s.conversation_id "
    "FROM {source} AS s, unnest(tsvector_to_array(to_tsvector('russian', s.text))) AS w(word) "
    "{where} ORDER BY 1, 2 ON CONFLICT DO NOTHING"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        "CREATE INDEX ix_identities_display_name_trgm ON identities "
        "USING gin (display_name gin_trgm_ops)"
    )
    # No foreign key: a conversation with messages is never deleted, and a key checked for
    # every word would lock the conversation's row once a word.
    op.execute(
        "CREATE TABLE conversation_words (word text NOT NULL, conversation_id integer NOT NULL, "
        "CONSTRAINT pk_conversation_words PRIMARY KEY (word, conversation_id))"
    )
    op.execute(
        "CREATE FUNCTION conversation_words_added() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {_WORDS_OF.format(source='new_messages', where='')}; RETURN NULL; END $$"
    )
    # An edit can take a word away: the conversation's words are counted again (edits are rare).
    op.execute(
        "CREATE FUNCTION conversation_words_edited() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM conversation_words WHERE conversation_id = NEW.conversation_id; "
        + _WORDS_OF.format(source="messages", where="WHERE s.conversation_id = NEW.conversation_id")
        + "; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER conversation_words_insert AFTER INSERT ON messages "
        "REFERENCING NEW TABLE AS new_messages FOR EACH STATEMENT "
        "EXECUTE FUNCTION conversation_words_added()"
    )
    op.execute(
        "CREATE TRIGGER conversation_words_update AFTER UPDATE OF text ON messages FOR EACH ROW "
        "WHEN (OLD.text IS DISTINCT FROM NEW.text) EXECUTE FUNCTION conversation_words_edited()"
    )
    op.execute(_WORDS_OF.format(source="messages", where=""))
    op.execute("DROP INDEX ix_messages_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_messages_search ON messages USING gin (to_tsvector('russian', text))"
    )
    op.execute("DROP TRIGGER conversation_words_update ON messages")
    op.execute("DROP TRIGGER conversation_words_insert ON messages")
    op.execute("DROP FUNCTION conversation_words_edited()")
    op.execute("DROP FUNCTION conversation_words_added()")
    op.execute("DROP TABLE conversation_words")
    op.execute("DROP INDEX ix_identities_display_name_trgm")
