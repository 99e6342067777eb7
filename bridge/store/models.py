"""The conversation store's tables. Migrations in `migrations/versions` must match these."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bridge.domain import (
    AuthorKind,
    ConversationState,
    DecisionOutcome,
    DeliveryStatus,
    Direction,
    Network,
)

# Made by migrations, not by these models (expression, partial and trigram indexes, SQLite's
# FTS5 table and the tables FTS5 keeps behind it, PostgreSQL's words of each conversation that
# triggers keep): the comparison of the two leaves them out.
MIGRATION_ONLY = (
    "conversation_words",
    "ix_identities_display_name_trgm",
    "ix_conversations_open_order",
    "ix_conversations_resolved_order",
    "ix_messages_agent_answers",
    "ix_messages_queued",
)


def made_by_migration_only(name: str) -> bool:
    return name in MIGRATION_ONLY or name.startswith("message_search")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on both backends (SQLite returns naive datetimes otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware values")
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


def str_enum(cls: type[enum.StrEnum]) -> sa.Enum:
    """A VARCHAR holding the enum's values: new values need no database type migration."""
    return sa.Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    # Named constraints, so that later migrations can alter them on SQLite too (batch mode).
    # Unique keys lead with the selective column (an external id, not the network), so that
    # batched IN lookups stay index probes even when the planner's statistics are stale.
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UtcDateTime}


class Customer(Base):
    """One person, who may own identities on several networks."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CustomerLink(Base):
    """An agent said two customers are one person: the second one's identities and
    conversations moved to the first. Kept so that the move can be undone exactly."""

    __tablename__ = "customer_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    merged_customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    identity_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    conversation_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[dt.datetime | None]


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("external_user_id", "network"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    network: Mapped[Network] = mapped_column(str_enum(Network))
    external_user_id: Mapped[str] = mapped_column(sa.String(128))
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # whether the community may write to the person privately, as the network last told
    # (VK's message_allow / message_deny); None: never told
    allows_private: Mapped[bool | None]


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(128), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16), default="agent")
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in agent. The cookie holds a random token; only its SHA-256 is stored here, so
    a copy of the database cannot be used to sign in."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class ApiToken(Base):
    """An integration's token for the REST API, acting as its agent; only the SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # "full", or "read-only" (GET only); tokens issued before scopes existed are full
    scope: Mapped[str] = mapped_column(sa.String(16), default="full", server_default="full")
    expires_at: Mapped[dt.datetime | None]
    # A revoked token is kept, so that its next use is known for a stale one, not a guess.
    revoked_at: Mapped[dt.datetime | None]


class SignInAttempt(Base):
    """Recent sign-in attempts counted per login and per client address (the key says which),
    for the sign-in throttle (`bridge.web.throttle`)."""

    __tablename__ = "sign_in_attempts"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    attempts: Mapped[int]
    # seconds since the epoch: the throttle only subtracts and compares them
    last_attempt: Mapped[float] = mapped_column(sa.Float, index=True)


class Conversation(Base):
    """One chat on one network; a resolved one is reopened by the customer's next message."""

    __tablename__ = "conversations"
    __table_args__ = (
        sa.UniqueConstraint("chat_id", "network"),
        sa.Index("ix_conversations_state_last", "state", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[Network] = mapped_column(str_enum(Network))
    chat_id: Mapped[str] = mapped_column(sa.String(128))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    identity_id: Mapped[int] = mapped_column(sa.ForeignKey("identities.id"))
    state: Mapped[ConversationState] = mapped_column(str_enum(ConversationState))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    handoff_reason: Mapped[str | None] = mapped_column(sa.String(32))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    handed_off_at: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    # The team routing rules gave it, or an agent chose; no foreign key: adding one to this table
    # on SQLite means rebuilding it, so deleting a team clears its conversations itself.
    team_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    # when the assignee got it: re-assignment counts the assignee's time to answer from here
    assigned_at: Mapped[dt.datetime | None]
    # unconfident questions in a row (the second one hands off)
    misses: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    # the customer message the bot answered last, whose "did it help?" is still open
    answered_message_id: Mapped[int | None]
    # since when the customer has been waiting for a person (the SLA clock); None: answered
    awaiting_since: Mapped[dt.datetime | None]
    # a public thread: the comments under one post, by many authors (customer_id and
    # identity_id are its first author's); post_text and post_url say what it hangs under
    public: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    post_text: Mapped[str | None] = mapped_column(sa.Text)
    post_url: Mapped[str | None] = mapped_column(sa.String(1024))
    # how urgent a public thread is (listening rules): 0 usual, 1 urgent or angry, 2 both;
    # the inbox shows the higher first within a view
    priority: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default=sa.text("0"))


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("network_message_id", "network"),
        sa.Index("ix_messages_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"))
    network: Mapped[Network] = mapped_column(str_enum(Network))
    direction: Mapped[Direction] = mapped_column(str_enum(Direction))
    author_kind: Mapped[AuthorKind] = mapped_column(str_enum(AuthorKind))
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    network_message_id: Mapped[str | None] = mapped_column(sa.String(128))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    in_reply_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id"))
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(str_enum(DeliveryStatus))
    delivery_error: Mapped[str | None] = mapped_column(sa.Text)
    # [{"label": ..., "data": ...}]: buttons sent under the message (kept for a re-send)
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    edited_at: Mapped[dt.datetime | None]
    # who wrote a customer's message (in a public thread each comment has its own author); no
    # foreign key, as adding one to this table on SQLite means rebuilding it
    author_identity_id: Mapped[int | None] = mapped_column(sa.Integer)
    # the network's id of the comment a public comment answers
    reply_to_network_id: Mapped[str | None] = mapped_column(sa.String(128))
    # the customer deleted it on the network: kept, shown as deleted
    deleted_at: Mapped[dt.datetime | None]
    # An outgoing message still queued (the outbox, `bridge.delivery.outbox`): when it was last
    # published again (by the sweep, or an agent's "send again"; None: only when written), and
    # the sender that holds it to send it, until when (a lease it renews while sending)
    requeued_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_until: Mapped[dt.datetime | None]


def an_agents_answer(
    answer: sa.FromClause, message_id: sa.ColumnElement[int] | int
) -> sa.ColumnElement[bool]:
    """`answer` (messages, or an alias of it) is an agent's reply to the message `message_id`,
    read through the partial index ix_messages_agent_answers. Its author kind is literal SQL: a
    prepared statement's generic plan can match the index's predicate only against a constant."""
    return sa.and_(
        answer.c.in_reply_to_id == message_id,
        answer.c.author_kind == sa.literal_column(f"'{AuthorKind.AGENT.value}'"),
    )


class DeadLetter(Base):
    """Input that could not be processed, kept with the reason for an operator to inspect."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[str] = mapped_column(sa.Text)
    payload_bytes: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Decision(Base):
    """What the bot did with one customer question, and what came of it: the article and the
    confidence, the threshold that applied, the customer's "did it help?" and, in shadow mode,
    the agent's verdict on the suggestion. The evidence an admin picks thresholds from."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    network: Mapped[Network] = mapped_column(str_enum(Network))
    outcome: Mapped[DecisionOutcome] = mapped_column(str_enum(DecisionOutcome))
    reason: Mapped[str | None] = mapped_column(sa.String(32))
    article_id: Mapped[str | None] = mapped_column(sa.String(128))
    confidence: Mapped[float | None] = mapped_column(sa.Float)
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    feedback: Mapped[str | None] = mapped_column(sa.String(16))
    feedback_at: Mapped[dt.datetime | None]
    verdict: Mapped[str | None] = mapped_column(sa.String(16))
    verdict_agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    verdict_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class CannedResponse(Base):
    """A ready reply (greeting, "thanks for waiting", ...); `language` None: any language."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(128))
    text: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Threshold(Base):
    """An auto-answer threshold an admin chose: scope "global" or "network:<name>" (an
    article's own threshold lives on the article). Over the settings' values."""

    __tablename__ = "thresholds"

    scope: Mapped[str] = mapped_column(sa.String(160), primary_key=True)
    value: Mapped[float] = mapped_column(sa.Float)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ThresholdChange(Base):
    """Who changed which threshold, when, from what to what (None: no override)."""

    __tablename__ = "threshold_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(160))
    old_value: Mapped[float | None] = mapped_column(sa.Float)
    new_value: Mapped[float | None] = mapped_column(sa.Float)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KeptFile(Base):
    """A file a customer sent where no network keeps it for us: the web chat's, and Messenger's
    (whose addresses expire). The key comes from the message, so a message received twice keeps
    one file; what the file is (kind, name, type, size) is in the message's attachment."""

    __tablename__ = "kept_files"

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    size: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KbArticle(Base):
    """A knowledge-base article; `kb.articles.Article` is its in-memory form
    (`bridge.knowledge.articles` converts between them)."""

    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(255), default="")
    # language -> answer text, e.g. {"ru": ..., "en": ...}
    answers: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    # [{"text": ..., "language": "ru" | "en"}, ...] in the article's order
    examples: Mapped[list[dict[str, str | None]]] = mapped_column(sa.JSON)
    tags: Mapped[list[str]] = mapped_column(sa.JSON)
    never_auto: Mapped[bool] = mapped_column(default=False)
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ArticleChange(Base):
    """Who created, changed or deleted a knowledge-base article, when, and each changed field's
    value before and after. Kept when the article is deleted, so it has no foreign key to it."""

    __tablename__ = "article_changes"
    __table_args__ = (sa.Index("ix_article_changes_article_id_id", "article_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(16))  # created | updated | deleted
    # field -> [before, after]; before is None on creation, after is None on deletion
    changes: Mapped[dict[str, list[object]]] = mapped_column(sa.JSON)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ExampleVector(Base):
    """An article example's embedding by one model, kept so that a restart embeds only the
    examples that are new. Keyed by the model's name and the SHA-256 of the text (texts are
    too long for a key); the same text in two articles is one row."""

    __tablename__ = "example_vectors"

    model: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    text_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text)
    # float32, little-endian, one unit-length row
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationRead(Base):
    """The newest message an agent has seen in a conversation: newer customer messages mark it
    unread for that agent."""

    __tablename__ = "conversation_reads"

    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    read_message_id: Mapped[int]
    read_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CsatRating(Base):
    """A customer's rating (1-5) of a conversation an agent resolved: the request sent at the
    resolution, then the press (a second press changes it) and an optional comment. Credited to
    the agent who had the conversation when it was resolved."""

    __tablename__ = "csat_ratings"
    __table_args__ = (sa.Index("ix_csat_ratings_asked_at", "asked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # the message that asked; its buttons name it, so a press finds its row
    request_message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    network: Mapped[Network] = mapped_column(str_enum(Network))
    asked_at: Mapped[dt.datetime]
    rating: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rated_at: Mapped[dt.datetime | None]
    comment: Mapped[str | None] = mapped_column(sa.Text)
    commented_at: Mapped[dt.datetime | None]


def _table(model: type[Base]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


# Core tables for the bulk statements of the hot path (no ORM unit of work there).
customers = _table(Customer)
identities = _table(Identity)
agents = _table(Agent)
conversations = _table(Conversation)
messages = _table(Message)
dead_letters = _table(DeadLetter)
articles = _table(KbArticle)
article_changes = _table(ArticleChange)
decisions = _table(Decision)
web_sessions = _table(WebSession)
api_tokens = _table(ApiToken)
sign_in_attempts = _table(SignInAttempt)
customer_links = _table(CustomerLink)
canned_responses = _table(CannedResponse)
thresholds = _table(Threshold)
threshold_changes = _table(ThresholdChange)
kept_files = _table(KeptFile)
example_vectors = _table(ExampleVector)
conversation_reads = _table(ConversationRead)
csat_ratings = _table(CsatRating)


class Label(Base):
    """A label admins keep (name and colour) for agents to put on conversations. `name_key` is
    the name case-folded: unique, so "VIP" and "vip" are one label on SQLite too, whose lower()
    knows only ASCII."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    name_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    colour: Mapped[str] = mapped_column(sa.String(7))  # "#rrggbb", lower case
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationLabel(Base):
    """A label on a conversation, with who put it there (None: not an agent) and when."""

    __tablename__ = "conversation_labels"

    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    # indexed: the inbox's filter looks conversations up by label
    label_id: Mapped[int] = mapped_column(
        sa.ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_by: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


labels = _table(Label)
conversation_labels = _table(ConversationLabel)


class Team(Base):
    """Agents who take the same conversations: routing rules send conversations to a team, and
    those waiting are given in turn to its members who are online, within `capacity` open
    conversations each. `reassign_after_minutes`: an assignee who has not answered the customer
    that long loses the conversation to a colleague (None: never)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    name_key: Mapped[str] = mapped_column(sa.String(255), unique=True)  # the name case-folded
    auto_assign: Mapped[bool] = mapped_column(default=True)
    capacity: Mapped[int] = mapped_column(default=5)
    reassign_after_minutes: Mapped[int | None]
    # business hours: an IANA zone, and per weekday (0 Monday) a list of ["09:00", "18:00"]
    # spans; holidays are ISO dates. No zone: open around the clock.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    hours: Mapped[dict[str, list[list[str]]] | None] = mapped_column(sa.JSON)
    holidays: Mapped[list[str] | None] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    """An agent in a team (an agent may be in several); `last_assigned_at` orders the turns."""

    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    last_assigned_at: Mapped[dt.datetime | None]


class RoutingRule(Base):
    """When a conversation is handed to people: if every condition set here holds (an unset one
    holds always), it goes to `team_id` and gets `label_id`. Rules are tried by `position`; the
    first that names a team decides it, and every rule that holds adds its label."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int]
    network: Mapped[str | None] = mapped_column(sa.String(32))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    tag: Mapped[str | None] = mapped_column(sa.String(64))  # one of the best article's tags
    reason: Mapped[str | None] = mapped_column(sa.String(32))  # the handoff reason
    # listening: words or phrases, one a line, any of which a public comment must contain
    words: Mapped[str | None] = mapped_column(sa.Text)
    # a public comment the rule holds for is marked urgent
    urgent: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"))
    label_id: Mapped[int | None] = mapped_column(sa.ForeignKey("labels.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AgentPresence(Base):
    """Whether an agent can take conversations: `seen_at` is renewed while an inbox page of theirs
    is open, `active_at` while they use it; `status` is what they chose ("online" or "away")."""

    __tablename__ = "agent_presence"

    agent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(sa.String(16), default="online")
    seen_at: Mapped[dt.datetime | None]
    active_at: Mapped[dt.datetime | None]


teams = _table(Team)
team_members = _table(TeamMember)
routing_rules = _table(RoutingRule)
agent_presence = _table(AgentPresence)


class CommunitySolution(Base):
    """A customer's public comment an agent marked as the answer to another customer's question
    in the same public thread: what the community knows, for the knowledge base's gaps."""

    __tablename__ = "community_solutions"
    __table_args__ = (sa.Index("ix_community_solutions_marked_at", "marked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"))
    question_message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"))
    answer_message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    marked_at: Mapped[dt.datetime]


community_solutions = _table(CommunitySolution)


class ConversationMerge(Base):
    """A private conversation merged into the one its person already had and gone (a Messenger
    private reply names the person's PSID, under which they wrote before: bridge.store.rekey):
    its address leads to the one it went into."""

    __tablename__ = "conversation_merges"

    conversation_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    into_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    merged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


conversation_merges = _table(ConversationMerge)
