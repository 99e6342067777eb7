"""The pipeline on both database backends: dedupe -> store -> route, batch by batch."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import (
    Attachment,
    AuthorKind,
    ConversationState,
    DeliveryStatus,
    Direction,
    HandoffReason,
    Network,
)
from bridge.pipeline.responder import Answer, Question
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import (
    conversations,
    customers,
    dead_letters,
    decisions,
    identities,
    messages,
)
from tests.factories import drain_outbound, entries, inbound


class FixedResponder:
    """Answers every question with the same confidence, like a knowledge base would."""

    def __init__(self, confidence: float) -> None:
        self.confidence = confidence
        self.questions: list[Question] = []

    async def answer(self, question: Question) -> Answer | None:
        self.questions.append(question)
        return Answer(f"answer to {question.text}", self.confidence, "article-1")


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    return Pipeline(engine, memory_bus, settings, responder=None)


async def rows(
    engine: AsyncEngine, query: sa.Select[tuple[object, ...]]
) -> list[sa.Row[tuple[object, ...]]]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_first_message_creates_customer_identity_and_conversation(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(42, 1, "where is my order?")))

    identity = (await rows(engine, sa.select(identities)))[0]
    assert (identity.network, identity.external_user_id, identity.display_name) == (
        Network.TELEGRAM,
        "42",
        "Customer 42",
    )
    assert await count(engine, customers) == 1
    conversation = (await rows(engine, sa.select(conversations)))[0]
    assert conversation.identity_id == identity.id
    assert conversation.customer_id == identity.customer_id
    stored = (await rows(engine, sa.select(messages).where(messages.c.direction == "inbound")))[0]
    assert (stored.text, stored.author_kind, stored.network_message_id) == (
        "where is my order?",
        AuthorKind.CUSTOMER,
        "42-1",
    )


async def test_without_responder_conversation_is_handed_off_with_reason(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(42, 1)))

    conversation = (await rows(engine, sa.select(conversations)))[0]
    assert conversation.state is ConversationState.WAITING
    assert conversation.handoff_reason == HandoffReason.NO_RESPONDER
    assert conversation.handed_off_at is not None


async def test_handoff_acknowledgement_is_queued_in_the_customers_language(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    await pipeline.handle(
        entries(inbound(1, 1, "Где мой заказ?"), inbound(2, 1, "Where is my order?"))
    )

    acks = await rows(
        engine,
        sa.select(messages.c.text, messages.c.delivery_status, messages.c.author_kind)
        .where(messages.c.direction == Direction.OUTBOUND)
        .order_by(messages.c.conversation_id),
    )
    assert [a.text.split()[0] for a in acks] == ["Спасибо!", "Thank"]
    assert all(a.delivery_status is DeliveryStatus.QUEUED for a in acks)
    assert all(a.author_kind is AuthorKind.SYSTEM for a in acks)
    assert memory_bus.outbound_size(Network.TELEGRAM) == 2


async def test_the_conversation_takes_the_language_the_knowledge_base_detects(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    """Russian speakers write brand names in Latin: one detector decides for the pipeline and the
    knowledge base alike, so the answer comes in the language its article was matched in."""
    await pipeline.handle(entries(inbound(1, 1, "не работает wi-fi router modem")))

    conversation = (await rows(engine, sa.select(conversations)))[0]
    assert conversation.language == "ru"


async def test_acknowledgement_is_sent_once_per_handoff(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    await pipeline.handle(entries(inbound(7, 1), inbound(7, 2)))
    await pipeline.handle(entries(inbound(7, 3)))

    outbound = await rows(engine, sa.select(messages).where(messages.c.direction == "outbound"))
    assert len(outbound) == 1
    assert memory_bus.outbound_size(Network.TELEGRAM) == 1


async def test_redelivered_entry_is_stored_once_and_its_reply_queued_again(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    batch = entries(inbound(5, 1))
    await pipeline.handle(batch)
    await pipeline.handle(batch)

    assert await count(engine, messages) == 2  # the customer's message and one acknowledgement
    queued = [memory_bus._outbound[Network.TELEGRAM].get_nowait() for _ in range(2)]
    keys = {orjson.loads(entry.payload)["idempotency_key"] for entry in queued}
    assert len(keys) == 1, "the re-queued reply keeps its idempotency key, so it is sent once"
    assert pipeline.stats.duplicates == 1


async def test_duplicate_within_one_batch_is_stored_once(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(5, 1), inbound(5, 1)))

    inbound_rows = await rows(engine, sa.select(messages).where(messages.c.direction == "inbound"))
    assert len(inbound_rows) == 1


async def test_messages_of_one_conversation_keep_their_order(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(*(inbound(9, seq, f"m{seq}") for seq in range(30))))
    await pipeline.handle(entries(*(inbound(9, seq, f"m{seq}") for seq in range(30, 40))))

    texts = await rows(
        engine,
        sa.select(messages.c.text).where(messages.c.direction == "inbound").order_by(messages.c.id),
    )
    assert [t.text for t in texts] == [f"m{seq}" for seq in range(40)]


async def test_bad_input_is_dead_lettered_with_reason_and_the_rest_is_stored(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    too_long = inbound(3, 2).model_dump(mode="json") | {"text": "x" * 100_000}
    await pipeline.handle(
        entries(
            b"{not json",
            orjson.dumps({"network": "icq", "text": "hi"}),
            orjson.dumps(too_long),
            inbound(3, 1, "a good one"),
        )
    )

    letters = await rows(engine, sa.select(dead_letters).order_by(dead_letters.c.id))
    assert [letter.reason.split(":")[0] for letter in letters] == [
        "not JSON",
        "invalid inbound message",
        "invalid inbound message",
    ]
    assert "network" in letters[1].reason
    assert "text" in letters[2].reason
    assert letters[2].payload_bytes > 100_000
    assert len(letters[2].payload) <= pipeline.settings.dead_letter_max_bytes
    stored = await rows(engine, sa.select(messages.c.text).where(messages.c.direction == "inbound"))
    assert [s.text for s in stored] == ["a good one"]
    assert pipeline.stats.dead_lettered == 3


async def test_confident_answer_is_sent_and_the_conversation_stays_with_the_bot(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(engine, memory_bus, settings, FixedResponder(confidence=0.97))
    await pipeline.handle(entries(inbound(8, 1, "tariffs?")))

    conversation = (await rows(engine, sa.select(conversations)))[0]
    assert conversation.state is ConversationState.BOT
    assert conversation.first_response_at is not None
    reply = (await rows(engine, sa.select(messages).where(messages.c.direction == "outbound")))[0]
    assert reply.text.startswith("answer to tariffs?\n\n")
    assert reply.author_kind is AuthorKind.BOT


async def test_what_a_message_holds_is_stored_as_sent_whatever_its_characters(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    text = 'He said "hi" \\ back\nна русском, emoji 😀, tab\t'
    photo = Attachment(kind="photo", network_file_id='f"1\\', name='my "cat".jpg', size=12)
    message = inbound(8, 1, text).model_copy(update={"attachments": [photo]})
    pipeline = Pipeline(engine, memory_bus, settings, FixedResponder(confidence=0.987654321012345))
    await pipeline.handle(entries(message))

    stored = await rows(
        engine,
        sa.select(messages.c.text, messages.c.attachments, messages.c.buttons).order_by("id"),
    )
    assert [(s.text, s.attachments) for s in stored[:1]] == [
        (text, [photo.model_dump(mode="json")])
    ]
    assert stored[1].text.startswith(f"answer to {text}\n\n")
    assert stored[1].buttons == [
        b.model_dump() for b in drain_outbound(memory_bus, Network.TELEGRAM)[0].buttons
    ]
    confidence = await rows(engine, sa.select(decisions.c.confidence))
    assert [c.confidence for c in confidence] == [0.987654321012345]


async def test_unconfident_answer_hands_off_with_low_confidence(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(engine, memory_bus, settings, FixedResponder(confidence=0.5))
    await pipeline.handle(entries(inbound(8, 1, "something odd")))

    conversation = (await rows(engine, sa.select(conversations)))[0]
    assert conversation.state is ConversationState.WAITING
    assert conversation.handoff_reason == HandoffReason.LOW_CONFIDENCE


async def test_new_message_reopens_a_resolved_conversation(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(4, 1)))
    async with engine.begin() as conn:
        await conn.execute(sa.update(conversations).values(state=ConversationState.RESOLVED))
    await pipeline.handle(entries(inbound(4, 2, "one more thing")))

    conversation = (await rows(engine, sa.select(conversations)))[0]
    assert conversation.state is ConversationState.WAITING
    assert conversation.resolved_at is None
    acks = await rows(engine, sa.select(messages).where(messages.c.direction == "outbound"))
    assert len(acks) == 2, "a reopened conversation is handed off afresh and acknowledged again"


async def test_same_user_on_two_networks_gets_two_identities(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(
        entries(inbound(1, 1, network=Network.TELEGRAM), inbound(1, 1, network=Network.VK))
    )

    assert await count(engine, identities) == 2
    assert await count(engine, conversations) == 2


async def test_an_edited_message_updates_the_stored_one(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(6, 1, "my rooter is broken")))
    edit = inbound(6, 1, "my router is broken").model_copy(update={"kind": "edit"})
    await pipeline.handle(entries(edit))

    stored = await rows(engine, sa.select(messages).where(messages.c.direction == "inbound"))
    assert [(s.text, s.edited_at is not None) for s in stored] == [("my router is broken", True)]


async def test_an_edit_of_a_message_never_stored_is_stored_as_new(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(
        entries(inbound(6, 9, "edited later").model_copy(update={"kind": "edit"}))
    )

    stored = await rows(engine, sa.select(messages).where(messages.c.direction == "inbound"))
    assert [s.text for s in stored] == ["edited later"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("\u0000", ""),
        ("где\u0000 заказ", "где заказ"),
        ("half \ud83d of a smile", "half \ufffd of a smile"),
        ("bell\u0007 and escape\u001b[31m", "bell and escape[31m"),
        ("tab\tand\nlines\r\n", "tab\tand\nlines\r\n"),
    ],
    ids=["nul-only", "nul-inside", "lone-surrogate", "controls", "whitespace-kept"],
)
async def test_text_no_store_keeps_is_made_storable_and_stored(
    pipeline: Pipeline, engine: AsyncEngine, sent: str, kept: str
) -> None:
    """PostgreSQL refuses U+0000, UTF-8 has no lone surrogate: such a message once stalled its
    shard for ever. The raw entry as a worker would publish it, with the character escaped."""
    payload = orjson.dumps(inbound(8, 1).model_dump(mode="json")).replace(
        b'"text":"hello"', b'"text":' + _json_escaped(sent)
    )
    await pipeline.handle(entries(payload, inbound(8, 2, "after it")))

    stored = await rows(
        engine,
        sa.select(messages.c.text)
        .where(messages.c.direction == "inbound")
        .order_by(messages.c.network_message_id),
    )
    assert [s.text for s in stored] == [kept, "after it"]


def _json_escaped(text: str) -> bytes:
    """`text` as a JSON string with every non-ASCII character escaped (lone surrogates too)."""
    escaped = "".join(c if " " <= c < "\x7f" else f"\\u{ord(c):04x}" for c in text)
    return f'"{escaped}"'.encode()


class FailingOn:
    """A responder with a bug for one question: it raises on that text, whatever it is asked."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def answer(self, question: Question) -> Answer | None:
        if question.text == self.text:
            raise RuntimeError(f"cannot answer {self.text!r}")
        return None


async def test_an_entry_that_fails_alone_is_dead_lettered_and_the_rest_of_its_batch_is_stored(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(engine, memory_bus, settings, FailingOn("poison"))
    # Eight customers' first questions, each asked of the responder.
    batch = [inbound(n, 1, "poison" if n == 5 else f"question {n}") for n in range(1, 9)]

    await pipeline.handle(entries(*batch))

    stored = await rows(
        engine,
        sa.select(messages.c.text).where(messages.c.direction == "inbound").order_by(messages.c.id),
    )
    assert [s.text for s in stored] == [f"question {n}" for n in range(1, 9) if n != 5]
    (letter,) = await rows(engine, sa.select(dead_letters))
    assert "cannot answer 'poison'" in letter.reason and "failed 3 times" in letter.reason
    assert b'"poison"' in letter.payload.encode()


async def test_a_database_that_cannot_be_reached_fails_the_batch_for_the_bus_to_retry(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    """An outage is no entry's fault: nothing is dead-lettered, the batch is delivered again."""

    class Unreachable:
        async def answer(self, question: Question) -> Answer | None:
            raise ConnectionRefusedError("connection refused")

    pipeline = Pipeline(engine, memory_bus, settings, Unreachable())

    with pytest.raises(ConnectionRefusedError):
        await pipeline.handle(entries(inbound(10, 1, "question")))
    assert await count(engine, dead_letters) == 0


async def test_a_duplicate_key_from_another_chat_creates_no_conversation(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    """A message dropped as a duplicate leaves nothing behind: no empty conversation."""
    await pipeline.handle(entries(inbound(1, 1, "first")))
    copy = inbound(2, 1, "same key, other chat").model_copy(update={"network_message_id": "1-1"})

    await pipeline.handle(entries(copy))

    chats = await rows(engine, sa.select(conversations.c.chat_id))
    assert [c.chat_id for c in chats] == ["1"]
