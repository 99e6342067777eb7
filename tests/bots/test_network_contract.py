"""What every network does end to end, the same on Telegram, VK and Facebook Messenger: the
network's client library against its emulator, through the real pipeline and sender.

Each network's own behaviour (its webhook handshakes, VK's random_id, Messenger's windows, ...)
is in test_<network>_e2e.py; the harness, and what differs between the networks, in
network_harness.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import ConversationState, DeliveryStatus, HandoffReason
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import conversations, decisions, messages
from tests.factories import ScriptedResponder
from tests.network_harness import (
    NETWORKS,
    AnyNetwork,
    Bridge,
    Receiving,
    open_bridge,
    post,
    webhook_mode,
)

EVERY_WAY_IN = [
    pytest.param(name, way, id=f"{name}-{way}")
    for name, net in NETWORKS.items()
    for way in net.receivers
]
EVERY_FORGERY = [
    pytest.param(name, forgery, id=f"{name}-{forgery}")
    for name, net in NETWORKS.items()
    for forgery in net.forgeries
]


@pytest.fixture(params=list(NETWORKS))
def network(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def net(network: str) -> AnyNetwork:
    return NETWORKS[network]()


@pytest.fixture
def receiving(net: AnyNetwork, request: pytest.FixtureRequest) -> Receiving:
    return webhook_mode(request, net)


@pytest.fixture
async def bridge(
    net: AnyNetwork,
    receiving: Receiving,
    engine: AsyncEngine,
    settings: Settings,
    responder: Responder | None,
) -> AsyncIterator[Bridge[AnyNetwork]]:
    async with open_bridge(net, engine, settings, responder, receiving) as bridge:
        yield bridge


@pytest.mark.parametrize(("network", "receiving"), EVERY_WAY_IN)
async def test_a_customers_message_is_stored_once_handed_off_and_the_agents_reply_reaches_them(
    bridge: Bridge[AnyNetwork],
) -> None:
    bridge.net.customer(501)
    acknowledgement = await bridge.customer_writes(501, "Не работает интернет")
    assert acknowledgement.text.startswith("Спасибо!")

    await bridge.agent_replies(501, "Перезагрузите роутер")
    received = await bridge.net.wait_sent(501, 2)

    assert received[1].text == "Перезагрузите роутер"
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.ASSIGNED, "no_responder")]
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2
    # what came back besides (Messenger's echoes and delivery receipts) made no customer message
    await asyncio.sleep(0.2)
    assert await bridge.inbound_texts() == ["Не работает интернет"]


@pytest.mark.webhook
async def test_a_webhook_delivered_twice_is_stored_once(bridge: Bridge[AnyNetwork]) -> None:
    for attempt in range(2):
        request = bridge.net.webhook_request(503, "twice", attempt=attempt)
        assert await post(request, bridge.webhook_url) == bridge.net.accepted
    await bridge.wait_stored(1)
    await asyncio.sleep(0.2)

    assert await bridge.inbound_texts() == ["twice"]


@pytest.mark.webhook
@pytest.mark.parametrize(("network", "forgery"), EVERY_FORGERY)
async def test_a_webhook_that_fails_verification_is_refused_and_stores_nothing(
    bridge: Bridge[AnyNetwork], forgery: str
) -> None:
    request = bridge.net.webhook_request(504, "forged", forgery=forgery)

    status, _ = await post(request, bridge.webhook_url)
    await asyncio.sleep(0.2)

    assert status == bridge.net.refused_status
    assert await bridge.rows(sa.select(messages.c.id)) == []
    assert await bridge.bus.inbound_backlog() == 0


async def test_under_a_rate_limit_storm_every_reply_is_delivered_once_and_in_order(
    bridge: Bridge[AnyNetwork],
) -> None:
    chats = [601, 602, 603]
    for chat in chats:
        bridge.net.customer(chat)
        await bridge.customer_writes(chat, "привет")
    bridge.net.limit_every_other_send()

    for n in range(3):
        for chat in chats:
            await bridge.agent_replies(chat, f"reply {n}")
    for chat in chats:
        await bridge.net.wait_sent(chat, 4, within=bridge.net.storm_within_s)
    await asyncio.sleep(0.2)

    for chat in chats:
        texts = [sent.text for sent in bridge.net.sent(chat)]
        assert texts[1:] == ["reply 0", "reply 1", "reply 2"]
    assert bridge.sender.stats.retries > 0, "the storm really limited some sends"
    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}


async def test_a_reply_the_network_refuses_for_good_is_marked_failed_with_its_reason(
    bridge: Bridge[AnyNetwork],
) -> None:
    bridge.net.customer(701)
    await bridge.customer_writes(701, "hi")
    bridge.net.refuse_sends_to(701)

    await bridge.agent_replies(701, "are you there?")
    statuses = await bridge.settled_statuses()

    assert statuses[-1] == ("are you there?", DeliveryStatus.FAILED, bridge.net.refusal)
    assert bridge.sender.stats.retries == 0, "a permanent error is not retried"


@dataclass(frozen=True)
class Speaking:
    """A customer writing in one language, and what the bot says to them in it."""

    question: str
    did_it_help: str
    yes: str
    no: str
    glad: str
    handed_off: str


LANGUAGES = {
    "ru": Speaking(
        question="сколько стоит тариф?",
        did_it_help="Этот ответ помог?",
        yes="Да, спасибо",
        no="Нет, нужен человек",
        glad="Рады помочь! Пишите в любое время.",
        handed_off="Спасибо! Скоро вам ответит оператор",
    ),
    "en": Speaking(
        question="how much is the tariff?",
        did_it_help="Did this answer help?",
        yes="Yes, thanks",
        no="No, I need a person",
        glad="Glad to help! Write any time.",
        handed_off="Thank you! An agent will answer you soon",
    ),
}

auto_answers = pytest.mark.parametrize("responder", [ScriptedResponder(0.97)], ids=["confident"])
in_each_language = pytest.mark.parametrize("language", list(LANGUAGES))


@auto_answers
@in_each_language
async def test_an_auto_answer_asks_whether_it_helped_with_a_yes_and_a_no_button(
    bridge: Bridge[AnyNetwork], language: str
) -> None:
    speaking = LANGUAGES[language]
    bridge.net.customer(961, language)

    answer = await bridge.customer_writes(961, speaking.question)

    assert answer.text.endswith(speaking.did_it_help)
    assert [[label for label, _ in row] for row in answer.buttons] == [[speaking.yes, speaking.no]]


@auto_answers
@in_each_language
async def test_pressing_no_under_an_auto_answer_hands_the_conversation_to_an_agent(
    bridge: Bridge[AnyNetwork], language: str
) -> None:
    speaking = LANGUAGES[language]
    bridge.net.customer(962, language)
    answer = await bridge.customer_writes(962, speaking.question)
    [[_, (_, no)]] = answer.buttons

    bridge.net.press(962, answer, no)
    acknowledgement = (await bridge.net.wait_sent(962, 2))[1]

    assert acknowledgement.text.startswith(speaking.handed_off)
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.WAITING, HandoffReason.NOT_HELPFUL)]
    feedback = await bridge.rows(sa.select(decisions.c.article_id, decisions.c.feedback))
    assert feedback == [("article-1", FEEDBACK_NO)]


@auto_answers
@in_each_language
async def test_pressing_yes_under_an_auto_answer_closes_the_conversation(
    bridge: Bridge[AnyNetwork], language: str
) -> None:
    speaking = LANGUAGES[language]
    bridge.net.customer(963, language)
    answer = await bridge.customer_writes(963, speaking.question)
    [[(_, yes), _]] = answer.buttons

    bridge.net.press(963, answer, yes)
    thanks = (await bridge.net.wait_sent(963, 2))[1]

    assert thanks.text == speaking.glad
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.RESOLVED, None)]
    feedback = await bridge.rows(sa.select(decisions.c.article_id, decisions.c.feedback))
    assert feedback == [("article-1", FEEDBACK_YES)]


PHOTO = b"\xff\xd8\xff\xe0 the router, photographed" + bytes(500)
PDF = b"%PDF-1.4 contract"


async def test_a_photo_the_customer_sent_is_fetched_in_full_when_an_agent_opens_it(
    bridge: Bridge[AnyNetwork],
) -> None:
    bridge.net.customer(1501)
    bridge.net.send_photo(1501, PHOTO)
    [photo] = await bridge.stored_attachments()

    fetched = await bridge.net.channel.fetch_file(str(photo["network_file_id"]))

    assert photo["kind"] == "photo"
    assert fetched == PHOTO


async def test_a_document_the_customer_sent_is_fetched_in_full_when_an_agent_opens_it(
    bridge: Bridge[AnyNetwork],
) -> None:
    bridge.net.customer(1502)
    bridge.net.send_document(1502, PDF, "contract.pdf", "application/pdf")
    [document] = await bridge.stored_attachments()

    fetched = await bridge.net.channel.fetch_file(str(document["network_file_id"]))

    assert document["kind"] == "document"
    assert fetched == PDF
