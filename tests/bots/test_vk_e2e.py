"""VK end to end, what is VK's own: vk_api against the emulator, through the real pipeline and
senders. What every network does is in test_network_contract.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import DeliveryStatus
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import identities
from emulators.faults import Fault, FaultKind
from emulators.vk import VkEmulator
from tests.factories import ScriptedResponder
from tests.network_harness import Bridge, EmulatedVk, open_bridge

VkBridge = Bridge[EmulatedVk]


@pytest.fixture
async def bridge(
    engine: AsyncEngine, settings: Settings, responder: Responder | None
) -> AsyncIterator[VkBridge]:
    async with open_bridge(EmulatedVk(), engine, settings, responder, "polling") as bridge:
        yield bridge


@pytest.fixture
def vk(bridge: VkBridge) -> VkEmulator:
    return bridge.net.emulator


async def test_customer_identity_name_and_language_come_from_vk(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    vk.customer(501, first_name="Иван", last_name="Петров", lang_id=0)
    vk.write(501, "Не работает интернет")
    await bridge.wait_stored(1)

    found = await bridge.rows(
        sa.select(identities.c.external_user_id, identities.c.display_name, identities.c.language)
    )
    assert found == [("501", "Иван Петров", "ru")]


async def test_a_reply_whose_answer_vk_lost_is_sent_again_and_arrives_once(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    bridge.net.customer(601)
    await bridge.customer_writes(601, "привет")
    # VK sent it and only its answer is lost: the sender retries, random_id keeps it single
    vk.faults.add(Fault(FaultKind.DROP, after_processing=True), methods="messages.send", times=1)

    await bridge.agent_replies(601, "reply 0")
    await vk.wait_for_bot_messages(601, 2)
    statuses = await bridge.settled_statuses()
    await asyncio.sleep(0.2)

    assert [m.text for m in vk.bot_messages(601)][1:] == ["reply 0"]
    assert bridge.sender.stats.retries > 0, "the answer really was lost"
    assert {status for _, status, _ in statuses} == {DeliveryStatus.SENT}


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)], ids=["confident"])
async def test_the_did_this_help_buttons_are_callback_buttons(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    bridge.net.customer(961)
    vk.write(961, "сколько стоит тариф?")
    answer = (await vk.wait_for_bot_messages(961, 1))[0]

    assert answer.keyboard is not None
    assert [button["action"]["type"] for button in answer.keyboard["buttons"][0]] == [
        "callback",
        "callback",
    ]


async def test_a_documents_title_is_stored_as_its_name(bridge: VkBridge, vk: VkEmulator) -> None:
    bridge.net.customer(1502)
    vk.write_document(1502, b"%PDF-1.4 receipt", "Квитанция.pdf")
    [document] = await bridge.stored_attachments()

    assert (document["kind"], document["name"]) == ("document", "Квитанция.pdf")


async def test_a_file_vk_no_longer_has_is_a_lookup_error_that_says_so(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    bridge.net.customer(1503)
    sent = vk.write_document(1503, b"old", "old.txt")
    [document] = await bridge.stored_attachments()
    vk.files.forget(sent["attachments"][0]["doc"]["url"])

    with pytest.raises(LookupError, match="VK: the file server answered 404"):
        await bridge.net.channel.fetch_file(str(document["network_file_id"]))


async def test_an_attachment_id_stored_without_its_message_is_refused_clearly(
    bridge: VkBridge,
) -> None:
    with pytest.raises(LookupError, match="stored without its message"):
        await bridge.net.channel.fetch_file("photo1501_457239017_abc")
