"""The pipeline's writes on PostgreSQL: one statement per table per batch, whatever its size.

Each statement takes the batch's rows as one JSON parameter (an array of arrays, the columns in a
fixed order), so its text never changes with the number of rows: it is prepared once per
connection, and the driver sends one string, encoded in C, instead of a parameter set per row
(or an array per column, whose elements asyncpg inspects one by one in Python). Finding or
creating rows is one statement too: the rows found, and the missing ones inserted (`ON CONFLICT
DO NOTHING`, in the order given). A row another transaction inserted meanwhile is in neither
half; the caller reads those again (a new statement sees what was committed since).
SQLite, in process and with one writer, keeps the plain statements (`ingest`, `worker`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import AuthorKind, ConversationState, DeliveryStatus, Direction, Network
from bridge.store.models import conversations, identities, messages

Columns = tuple[tuple[str, str], ...]
"""A batch's columns: (name, SQL type), in the order each row of `:rows` holds them."""


def _rows(columns: Columns) -> str:
    """The batch's rows as a subquery, from the parameter `:rows`; `n` numbers them in order."""
    picked = ", ".join(
        f"CAST(r ->> {i} AS {sql_type}) AS {name}" for i, (name, sql_type) in enumerate(columns)
    )
    return (
        f"(SELECT {picked}, n FROM jsonb_array_elements(CAST(CAST(:rows AS text) AS jsonb))"
        " WITH ORDINALITY AS e (r, n))"
    )


def rows_json(columns: Columns, values: Mapping[str, Sequence[Any]]) -> str:
    """`values`: a list per column name, a value per row (a JSON column's as JSON text)."""
    return orjson.dumps(list(zip(*(values[name] for name, _ in columns), strict=True))).decode()


IDENTITY_COLUMNS: Columns = (
    ("network", "varchar"),
    ("external_user_id", "varchar"),
    ("display_name", "varchar"),
    ("language", "varchar"),
)
# (identity id, customer id, network, external user id); each identity made comes with its customer
# (checked at the end of the statement, so the customer may follow the identity).
_IDENTITIES = sa.text(
    f"""
    WITH wanted AS {_rows(IDENTITY_COLUMNS)}, found AS (
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
NEW_CONVERSATION_COLUMNS: Columns = (
    ("network", "varchar"),
    ("chat_id", "varchar"),
    ("identity_id", "integer"),
    ("customer_id", "integer"),
    ("public", "boolean"),
    ("post_text", "text"),
    ("post_url", "varchar"),
)
_CONVERSATIONS = sa.text(
    f"""
    WITH wanted AS {_rows(NEW_CONVERSATION_COLUMNS)}, found AS (
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

INBOUND_COLUMNS: Columns = (
    ("conversation_id", "integer"),
    ("network", "varchar"),
    ("text", "text"),
    ("attachments", "json"),
    ("network_message_id", "varchar"),
    ("created_at", "timestamptz"),
    ("author_identity_id", "integer"),
    ("reply_to_network_id", "varchar"),
)
# The unique (network message id, network) key is the dedupe: a second copy inserts nothing.
_INBOUND = sa.text(
    f"""
    INSERT INTO messages (conversation_id, network, direction, author_kind, text, attachments,
        network_message_id, created_at, author_identity_id, reply_to_network_id)
    SELECT conversation_id, network, :direction, :author_kind, text, attachments,
        network_message_id, created_at, author_identity_id, reply_to_network_id
    FROM {_rows(INBOUND_COLUMNS)} AS v
    ORDER BY n
    ON CONFLICT (network_message_id, network) DO NOTHING
    RETURNING id, network, network_message_id
    """
).columns(messages.c.id, messages.c.network, messages.c.network_message_id)

REPLY_COLUMNS: Columns = (
    ("conversation_id", "integer"),
    ("network", "varchar"),
    ("author_kind", "varchar"),
    ("text", "text"),
    ("idempotency_key", "varchar"),
    ("in_reply_to_id", "integer"),
    ("buttons", "json"),
)
_REPLIES = sa.text(
    f"""
    INSERT INTO messages (conversation_id, network, direction, author_kind, text,
        idempotency_key, in_reply_to_id, delivery_status, buttons, created_at)
    SELECT conversation_id, network, :direction, author_kind, text, idempotency_key,
        in_reply_to_id, :status, buttons, :now
    FROM {_rows(REPLY_COLUMNS)} AS v
    ORDER BY n
    RETURNING id, idempotency_key
    """
).columns(messages.c.id, messages.c.idempotency_key)

DECISION_COLUMNS: Columns = (
    ("message_id", "integer"),
    ("conversation_id", "integer"),
    ("network", "varchar"),
    ("outcome", "varchar"),
    ("reason", "varchar"),
    ("article_id", "varchar"),
    ("confidence", "float8"),
    ("threshold", "float8"),
)
_DECISIONS = sa.text(
    f"""
    INSERT INTO decisions (message_id, conversation_id, network, outcome, reason, article_id,
        confidence, threshold, created_at)
    SELECT message_id, conversation_id, network, outcome, reason, article_id, confidence,
        threshold, :now
    FROM {_rows(DECISION_COLUMNS)} AS v
    ORDER BY n
    """
)

WRITE_BACK_COLUMNS: Columns = (
    ("id", "integer"),
    ("state", "varchar"),
    ("handoff_reason", "varchar"),
    ("language", "varchar"),
    ("handed_off_at", "timestamptz"),
    ("first_response_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("last_message_at", "timestamptz"),
    ("misses", "integer"),
    ("answered_message_id", "integer"),
    ("awaiting_since", "timestamptz"),
    ("team_id", "integer"),
    ("priority", "smallint"),
)
# The caller gives the rows in id order, as every batch locks them: no two batches deadlock.
_WRITE_BACK = sa.text(
    f"""
    UPDATE conversations AS c
    SET {", ".join(f"{name} = v.{name}" for name, _ in WRITE_BACK_COLUMNS[1:])}
    FROM {_rows(WRITE_BACK_COLUMNS)} AS v
    WHERE c.id = v.id
    """
)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def find_identities(
    conn: AsyncConnection, wanted: Mapping[str, Sequence[Any]], now: dt.datetime
) -> list[tuple[int, int, Network, str]]:
    """(identity id, customer id, network, user id) of each identity wanted (`IDENTITY_COLUMNS`,
    in key order); each new one comes with a new customer."""
    result = await conn.execute(
        _IDENTITIES, {"rows": rows_json(IDENTITY_COLUMNS, wanted), "now": now}
    )
    return cast(list[tuple[int, int, Network, str]], result.all())


async def find_conversations(
    conn: AsyncConnection, wanted: Mapping[str, Sequence[Any]], now: dt.datetime
) -> Iterable[Sequence[Any]]:
    """The `CONVERSATION_COLUMNS` of the conversations wanted (`NEW_CONVERSATION_COLUMNS`),
    found or made."""
    params = {
        "rows": rows_json(NEW_CONVERSATION_COLUMNS, wanted),
        "state": ConversationState.BOT.value,
        "now": now,
    }
    return await conn.execute(_CONVERSATIONS, params)


async def insert_inbound(
    conn: AsyncConnection, values: Mapping[str, Sequence[Any]]
) -> list[tuple[int, Network, str]]:
    """(id, network, network message id) of the messages inserted; copies insert nothing."""
    params = {
        "rows": rows_json(INBOUND_COLUMNS, values),
        "direction": Direction.INBOUND.value,
        "author_kind": AuthorKind.CUSTOMER.value,
    }
    return cast(list[tuple[int, Network, str]], (await conn.execute(_INBOUND, params)).all())


async def insert_replies(
    conn: AsyncConnection, values: Mapping[str, Sequence[Any]], now: dt.datetime
) -> dict[str, int]:
    """The ids of the replies inserted, by idempotency key (unique)."""
    params = {
        "rows": rows_json(REPLY_COLUMNS, values),
        "direction": Direction.OUTBOUND.value,
        "status": DeliveryStatus.QUEUED.value,
        "now": now,
    }
    return {key: message_id for message_id, key in await conn.execute(_REPLIES, params)}


async def insert_decisions(
    conn: AsyncConnection, values: Mapping[str, Sequence[Any]], now: dt.datetime
) -> None:
    await conn.execute(_DECISIONS, {"rows": rows_json(DECISION_COLUMNS, values), "now": now})


async def write_back(conn: AsyncConnection, values: Mapping[str, Sequence[Any]]) -> None:
    await conn.execute(_WRITE_BACK, {"rows": rows_json(WRITE_BACK_COLUMNS, values)})
