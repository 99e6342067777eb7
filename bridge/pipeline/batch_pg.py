"""The pipeline's writes on PostgreSQL: one statement per table per batch, whatever its size.

Each statement takes the batch's columns as arrays (`unnest`), so its text never changes with
the number of rows: it is prepared once per connection, and the driver sends a few arrays instead
of a parameter set per row. Finding or creating rows is one statement too: the rows found, and
the missing ones inserted (`ON CONFLICT DO NOTHING`, in the order given). A row another
transaction inserted meanwhile is in neither half; the caller reads those again (a new statement
sees what was committed since).
SQLite, in process and with one writer, keeps the plain statements (`ingest`, `worker`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import AuthorKind, ConversationState, DeliveryStatus, Direction, Network
from bridge.store.models import conversations, identities, messages

# (identity id, customer id, network, external user id); each identity made comes with its customer
# (checked at the end of the statement, so the customer may follow the identity).
_IDENTITIES = sa.text(
    """
    WITH wanted AS (
        SELECT * FROM unnest(
            CAST(:networks AS varchar[]), CAST(:user_ids AS varchar[]),
            CAST(:names AS varchar[]), CAST(:languages AS varchar[])
        ) WITH ORDINALITY AS w (network, external_user_id, display_name, language, n)
    ), found AS (
        SELECT i.id, i.customer_id, i.network, i.external_user_id
        FROM identities AS i JOIN wanted AS w
            ON i.external_user_id = w.external_user_id AND i.network = w.network
    ), new AS (
        SELECT nextval(pg_get_serial_sequence('customers', 'id')) AS customer_id, w.*
        FROM wanted AS w
        WHERE NOT EXISTS (
            SELECT FROM found AS f
            WHERE f.external_user_id = w.external_user_id AND f.network = w.network
        )
    ), made AS (
        INSERT INTO identities
            (customer_id, network, external_user_id, display_name, language, created_at)
        SELECT customer_id, network, external_user_id, display_name, language, :now
        FROM new ORDER BY n
        ON CONFLICT (external_user_id, network) DO NOTHING
        RETURNING id, customer_id, network, external_user_id, display_name
    ), made_customers AS (
        -- of the identities inserted only: one made meanwhile by another batch has its own
        INSERT INTO customers (id, display_name, created_at)
        SELECT customer_id, display_name, :now FROM made
    )
    SELECT id, customer_id, network, external_user_id FROM found
    UNION ALL SELECT id, customer_id, network, external_user_id FROM made
    """
).columns(
    identities.c.id, identities.c.customer_id, identities.c.network, identities.c.external_user_id
)

CONVERSATION_COLUMNS = (
    "id",
    "network",
    "chat_id",
    "state",
    "handoff_reason",
    "language",
    "handed_off_at",
    "first_response_at",
    "resolved_at",
    "last_message_at",
    "misses",
    "answered_message_id",
    "awaiting_since",
    "assignee_id",
    "team_id",
    "public",
    "priority",
)
_COLUMNS = ", ".join(CONVERSATION_COLUMNS)
_CONVERSATIONS = sa.text(
    f"""
    WITH wanted AS (
        SELECT * FROM unnest(
            CAST(:networks AS varchar[]), CAST(:chat_ids AS varchar[]),
            CAST(:identity_ids AS integer[]), CAST(:customer_ids AS integer[]),
            CAST(:public AS boolean[]), CAST(:post_texts AS text[]), CAST(:post_urls AS varchar[])
        ) WITH ORDINALITY AS w
            (network, chat_id, identity_id, customer_id, public, post_text, post_url, n)
    ), found AS (
        SELECT {", ".join(f"c.{name}" for name in CONVERSATION_COLUMNS)}
        FROM conversations AS c JOIN wanted AS w
            ON c.chat_id = w.chat_id AND c.network = w.network
    ), made AS (
        INSERT INTO conversations (network, chat_id, identity_id, customer_id, state,
            created_at, last_message_at, public, post_text, post_url)
        SELECT network, chat_id, identity_id, customer_id, :state, :now, :now,
            public, post_text, post_url
        FROM wanted AS w
        WHERE NOT EXISTS (
            SELECT FROM found AS f WHERE f.chat_id = w.chat_id AND f.network = w.network
        )
        ORDER BY n
        ON CONFLICT (chat_id, network) DO NOTHING
        RETURNING {_COLUMNS}
    )
    SELECT {_COLUMNS} FROM found UNION ALL SELECT {_COLUMNS} FROM made
    """
).columns(*(conversations.c[name] for name in CONVERSATION_COLUMNS))

# The unique (network message id, network) key is the dedupe: a second copy inserts nothing.
_INBOUND = sa.text(
    """
    INSERT INTO messages (conversation_id, network, direction, author_kind, text, attachments,
        network_message_id, created_at, author_identity_id, reply_to_network_id)
    SELECT conversation_id, network, :direction, :author_kind, text, CAST(attachments AS json),
        network_message_id, created_at, author_identity_id, reply_to_network_id
    FROM unnest(
        CAST(:conversation_ids AS integer[]), CAST(:networks AS varchar[]),
        CAST(:texts AS text[]), CAST(:attachments AS text[]),
        CAST(:network_message_ids AS varchar[]), CAST(:created_at AS timestamptz[]),
        CAST(:identity_ids AS integer[]), CAST(:reply_to AS varchar[])
    ) WITH ORDINALITY AS v (conversation_id, network, text, attachments, network_message_id,
        created_at, author_identity_id, reply_to_network_id, n)
    ORDER BY n
    ON CONFLICT (network_message_id, network) DO NOTHING
    RETURNING id, network, network_message_id
    """
).columns(messages.c.id, messages.c.network, messages.c.network_message_id)

_REPLIES = sa.text(
    """
    INSERT INTO messages (conversation_id, network, direction, author_kind, text,
        idempotency_key, in_reply_to_id, delivery_status, buttons, created_at)
    SELECT conversation_id, network, :direction, author_kind, text, idempotency_key,
        in_reply_to_id, :status, CAST(buttons AS json), :now
    FROM unnest(
        CAST(:conversation_ids AS integer[]), CAST(:networks AS varchar[]),
        CAST(:author_kinds AS varchar[]), CAST(:texts AS text[]),
        CAST(:keys AS varchar[]), CAST(:in_reply_to AS integer[]), CAST(:buttons AS text[])
    ) WITH ORDINALITY AS v (conversation_id, network, author_kind, text, idempotency_key,
        in_reply_to_id, buttons, n)
    ORDER BY n
    RETURNING id, idempotency_key
    """
).columns(messages.c.id, messages.c.idempotency_key)

_DECISIONS = sa.text(
    """
    INSERT INTO decisions (message_id, conversation_id, network, outcome, reason, article_id,
        confidence, threshold, created_at)
    SELECT message_id, conversation_id, network, outcome, reason, article_id, confidence,
        threshold, :now
    FROM unnest(
        CAST(:message_ids AS integer[]), CAST(:conversation_ids AS integer[]),
        CAST(:networks AS varchar[]), CAST(:outcomes AS varchar[]), CAST(:reasons AS varchar[]),
        CAST(:article_ids AS varchar[]), CAST(:confidences AS float8[]),
        CAST(:thresholds AS float8[])
    ) WITH ORDINALITY AS v (message_id, conversation_id, network, outcome, reason, article_id,
        confidence, threshold, n)
    ORDER BY n
    """
)

# The rows in id order, as every batch locks them, so that two batches cannot deadlock.
_WRITE_BACK = sa.text(
    """
    UPDATE conversations AS c
    SET state = v.state, handoff_reason = v.handoff_reason, language = v.language,
        handed_off_at = v.handed_off_at, first_response_at = v.first_response_at,
        resolved_at = v.resolved_at, last_message_at = v.last_message_at, misses = v.misses,
        answered_message_id = v.answered_message_id, awaiting_since = v.awaiting_since,
        team_id = v.team_id, priority = v.priority
    FROM unnest(
        CAST(:ids AS integer[]), CAST(:states AS varchar[]), CAST(:reasons AS varchar[]),
        CAST(:languages AS varchar[]), CAST(:handed_off_at AS timestamptz[]),
        CAST(:first_response_at AS timestamptz[]), CAST(:resolved_at AS timestamptz[]),
        CAST(:last_message_at AS timestamptz[]), CAST(:misses AS integer[]),
        CAST(:answered AS integer[]), CAST(:awaiting_since AS timestamptz[]),
        CAST(:team_ids AS integer[]), CAST(:priorities AS smallint[])
    ) AS v (id, state, handoff_reason, language, handed_off_at, first_response_at,
        resolved_at, last_message_at, misses, answered_message_id, awaiting_since, team_id,
        priority)
    WHERE c.id = v.id
    """
)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def find_identities(
    conn: AsyncConnection,
    wanted: Sequence[tuple[Network, str, str | None, str | None]],
    now: dt.datetime,
) -> list[tuple[int, int, Network, str]]:
    """(identity id, customer id, network, user id) of each identity wanted, given as (network,
    user id, display name, language) in key order; a customer is made with each new one."""
    result = await conn.execute(
        _IDENTITIES,
        {
            "networks": [w[0] for w in wanted],
            "user_ids": [w[1] for w in wanted],
            "names": [w[2] for w in wanted],
            "languages": [w[3] for w in wanted],
            "now": now,
        },
    )
    return cast(list[tuple[int, int, Network, str]], result.all())


async def find_conversations(
    conn: AsyncConnection, columns: dict[str, list[Any]], now: dt.datetime
) -> Iterable[Sequence[Any]]:
    """`columns`: networks, chat_ids, identity_ids, customer_ids, public, post_texts, post_urls,
    in key order; the conversations' `CONVERSATION_COLUMNS`, found or made."""
    params = columns | {"state": ConversationState.BOT.value, "now": now}
    return await conn.execute(_CONVERSATIONS, params)


async def insert_inbound(
    conn: AsyncConnection, columns: dict[str, list[Any]]
) -> list[tuple[int, Network, str]]:
    """(id, network, network message id) of the messages inserted; copies insert nothing."""
    params = columns | {
        "direction": Direction.INBOUND.value,
        "author_kind": AuthorKind.CUSTOMER.value,
    }
    return cast(list[tuple[int, Network, str]], (await conn.execute(_INBOUND, params)).all())


async def insert_replies(
    conn: AsyncConnection, columns: dict[str, list[Any]], now: dt.datetime
) -> dict[str, int]:
    """The ids of the replies inserted, by idempotency key (unique)."""
    params = columns | {
        "direction": Direction.OUTBOUND.value,
        "status": DeliveryStatus.QUEUED.value,
        "now": now,
    }
    return {key: message_id for message_id, key in await conn.execute(_REPLIES, params)}


async def insert_decisions(
    conn: AsyncConnection, columns: dict[str, list[Any]], now: dt.datetime
) -> None:
    await conn.execute(_DECISIONS, columns | {"now": now})


async def write_back(conn: AsyncConnection, columns: dict[str, list[Any]]) -> None:
    await conn.execute(_WRITE_BACK, columns)
