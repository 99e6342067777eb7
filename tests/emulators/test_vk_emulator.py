"""vk_api against the VK emulator: the envelopes, codes and long-poll failures our channel meets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from vk_api.exceptions import ApiError

from bots.vk import VkChannel
from bridge.backends.poll_position import FilePollPosition
from bridge.channel import DeliveryError
from bridge.domain import AuthorKind, Button, InboundMessage, Network, OutboundMessage
from emulators.faults import Fault, FaultKind
from emulators.vk import VkEmulator

TOKEN = "vk-test-token"
GROUP = 77


@pytest.fixture
async def vk() -> AsyncIterator[tuple[VkEmulator, VkChannel]]:
    emulator = VkEmulator(group_id=GROUP, token=TOKEN)
    server = TestServer(emulator.app, host="127.0.0.1")
    await server.start_server()
    channel = VkChannel(TOKEN, GROUP, api_url=str(server.make_url("")), poll_wait_s=1)
    yield emulator, channel
    await channel.close()
    await server.close()


async def test_send_is_deduplicated_by_random_id(vk: tuple[VkEmulator, VkChannel]) -> None:
    emulator, channel = vk
    emulator.customer(5, first_name="Иван", last_name="Петров")
    emulator.write(5, "привет")

    first = await channel.call("messages.send", peer_id=5, message="hi", random_id=42)
    again = await channel.call("messages.send", peer_id=5, message="hi", random_id=42)
    other = await channel.call("messages.send", peer_id=5, message="hi", random_id=43)

    assert first == again != other
    assert [m.text for m in emulator.bot_messages(5)] == ["hi", "hi"]


async def test_users_get_gives_names_in_the_asked_language(
    vk: tuple[VkEmulator, VkChannel],
) -> None:
    emulator, channel = vk
    emulator.customer(6, first_name="Иван", last_name="Петров", latin_name=("Ivan", "Petrov"))

    native = await channel.call("users.get", user_ids="6,999")
    latin = await channel.call("users.get", user_ids="6", lang="en")

    assert [(u["id"], u["first_name"], u["last_name"]) for u in native] == [(6, "Иван", "Петров")]
    assert (latin[0]["first_name"], latin[0]["last_name"]) == ("Ivan", "Petrov")


async def test_errors_come_in_the_vk_envelope_and_error_6_is_not_retried_by_vk_api(
    vk: tuple[VkEmulator, VkChannel],
) -> None:
    emulator, channel = vk
    emulator.faults.add(Fault(FaultKind.RATE_LIMIT), methods="users.get", times=1)

    with pytest.raises(ApiError) as raised:
        await channel.call("users.get", user_ids="1")
    assert raised.value.code == 6
    assert raised.value.error["request_params"][0] == {"key": "method", "value": "users.get"}

    with pytest.raises(ApiError) as never_allowed:
        await channel.call("messages.send", peer_id=8, message="x", random_id=1)
    assert never_allowed.value.code == 901

    bad = VkChannel("wrong", GROUP, api_url=str(emulator_url(channel)))
    with pytest.raises(ApiError) as unauthorised:
        await bad.call("users.get", user_ids="1")
    assert unauthorised.value.code == 5
    await bad.close()


def emulator_url(channel: VkChannel) -> str:
    adapter: Any = channel.session.get_adapter("https://api.vk.ru/method/")
    return str(adapter._base).removesuffix("/method/")


@pytest.mark.parametrize("failed", [1, 2, 3])
async def test_long_poll_failures_are_handled_and_later_messages_arrive(
    vk: tuple[VkEmulator, VkChannel], failed: int
) -> None:
    emulator, channel = vk
    emulator.customer(9, first_name="Анна")
    got: list[InboundMessage] = []

    async def sink(batch: Any) -> None:
        got.extend(batch)

    stop = asyncio.Event()
    poller = asyncio.ensure_future(channel.poll(sink, stop))
    await wait_until(lambda: channel.key is not None)  # events before the first ts are not ours
    emulator.write(9, "до")
    await wait_until(lambda: len(got) == 1)
    key = channel.key
    emulator.fail_long_poll(failed)
    await asyncio.sleep(0.1)
    emulator.write(9, "после")
    await wait_until(lambda: len(got) == 2)
    stop.set()
    await asyncio.wait_for(poller, 5)

    assert [m.text for m in got] == ["до", "после"]
    assert got[0].display_name == "Анна"
    assert (channel.key != key) is (failed != 1), "2 and 3 fetch a new key; 1 keeps it"


async def test_a_new_poller_goes_on_from_where_the_last_one_left_off(
    vk: tuple[VkEmulator, VkChannel], tmp_path: Path
) -> None:
    emulator, first = vk
    emulator.customer(9, first_name="Анна")
    position = FilePollPosition(tmp_path / "vk.poll-position")
    got: list[InboundMessage] = []

    async def sink(batch: Any) -> None:
        got.extend(batch)

    stop = asyncio.Event()
    poller = asyncio.ensure_future(first.poll(sink, stop, position))
    await wait_until(lambda: first.key is not None)
    emulator.write(9, "before the restart")
    await wait_until(lambda: len(got) == 1)
    stop.set()
    await asyncio.wait_for(poller, 5)
    emulator.write(9, "while no poller ran")
    second = VkChannel(TOKEN, GROUP, api_url=emulator_url(first), poll_wait_s=1)
    stop = asyncio.Event()
    poller = asyncio.ensure_future(second.poll(sink, stop, position))
    await wait_until(lambda: len(got) == 2)
    stop.set()
    await asyncio.wait_for(poller, 5)
    await second.close()

    assert [m.text for m in got] == ["before the restart", "while no poller ran"]


async def test_a_position_from_another_long_poll_history_is_dropped_for_now(
    vk: tuple[VkEmulator, VkChannel], tmp_path: Path
) -> None:
    emulator, channel = vk
    emulator.customer(9, first_name="Анна")
    position = FilePollPosition(tmp_path / "vk.poll-position")
    await position.save("999999999")  # e.g. left by a test community
    got: list[InboundMessage] = []

    async def sink(batch: Any) -> None:
        got.extend(batch)

    stop = asyncio.Event()
    poller = asyncio.ensure_future(channel.poll(sink, stop, position))
    await wait_until(lambda: channel.ts is not None and channel.ts != "999999999")
    emulator.write(9, "hello")
    await wait_until(lambda: len(got) == 1)
    stop.set()
    await asyncio.wait_for(poller, 5)

    assert await position.load() == channel.ts


async def wait_until(condition: Any) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within 5 s")


async def test_send_checks_length_and_keyboard(vk: tuple[VkEmulator, VkChannel]) -> None:
    emulator, channel = vk
    emulator.write(10, "hi")

    with pytest.raises(ApiError) as too_long:
        await channel.call("messages.send", peer_id=10, message="x" * 9001, random_id=1)
    with pytest.raises(ApiError) as bad_keyboard:
        await channel.call(
            "messages.send", peer_id=10, message="x", random_id=2, keyboard='{"buttons": 1}'
        )

    assert (too_long.value.code, bad_keyboard.value.code) == (914, 911)
    assert emulator.bot_messages(10) == []


@pytest.mark.parametrize(("code", "permanent"), [(6, False), (9, False), (10, False), (901, True)])
async def test_channel_maps_vk_errors_to_delivery_errors(
    vk: tuple[VkEmulator, VkChannel], code: int, permanent: bool
) -> None:
    emulator, channel = vk
    emulator.write(11, "hi")
    emulator.fail_next(code, methods=["messages.send"])

    with pytest.raises(DeliveryError) as raised:
        await channel.send(outbound(11, "reply"))

    assert raised.value.permanent is permanent
    assert raised.value.reason.startswith(f"VK error {code}: ")


async def test_a_lost_answer_is_not_sent_twice_on_retry(vk: tuple[VkEmulator, VkChannel]) -> None:
    emulator, channel = vk
    emulator.write(12, "hi")
    emulator.faults.add(
        Fault(FaultKind.DROP, after_processing=True), methods="messages.send", times=1
    )

    with pytest.raises(DeliveryError):
        await channel.send(outbound(12, "once"))
    delivered = await channel.send(outbound(12, "once"))

    assert [(str(m.id), m.text) for m in emulator.bot_messages(12)] == [
        (delivered.network_message_id, "once")
    ]


async def test_edits_and_button_presses_arrive_and_the_press_is_answered(
    vk: tuple[VkEmulator, VkChannel],
) -> None:
    emulator, channel = vk
    got: list[InboundMessage] = []

    async def sink(batch: Any) -> None:
        got.extend(batch)

    stop = asyncio.Event()
    poller = asyncio.ensure_future(channel.poll(sink, stop))
    await wait_until(lambda: channel.key is not None)
    written = emulator.write(13, "тариф?")
    emulator.edit(13, written["id"], "какой тариф?")
    await channel.send(outbound(13, "Это помогло?", [Button(label="Да", data="helped:yes")]))
    sent = emulator.bot_messages(13)[0]
    payload = json.loads(sent.keyboard["buttons"][0][0]["action"]["payload"])  # type: ignore[index]
    event_id = emulator.press_button(13, sent.id, payload)
    await wait_until(lambda: len(got) == 3 and emulator.button_event(event_id).answered)
    stop.set()
    await asyncio.wait_for(poller, 5)

    assert [(m.kind, m.text, m.network_message_id) for m in got] == [
        ("message", "тариф?", str(written["id"])),
        ("edit", "какой тариф?", str(written["id"])),
        ("button", "helped:yes", f"ev:{event_id}"),
    ]


async def test_callback_pushes_are_retried_until_ok() -> None:
    emulator = VkEmulator(group_id=GROUP, token=TOKEN, callback_retry_delay=0.01)
    seen: list[tuple[str, str | None]] = []

    async def receiver(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((body["type"], request.headers.get("X-Retry-Counter")))
        if body["type"] == "confirmation":
            return web.Response(text=emulator.confirmation)
        return web.Response(text="ok" if len(seen) > 2 else "not yet")

    app = web.Application()
    app.router.add_post("/hook", receiver)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await emulator.add_callback_server(str(server.make_url("/hook")), secret="s")
    emulator.write(14, "hi")
    await wait_until(lambda: len(seen) == 3)
    await emulator.close()
    await server.close()

    assert seen == [("confirmation", None), ("message_new", None), ("message_new", "1")]


def outbound(peer: int, text: str, buttons: list[Button] | None = None) -> OutboundMessage:
    return OutboundMessage(
        message_id=1,
        conversation_id=1,
        network=Network.VK,
        chat_id=str(peer),
        text=text,
        idempotency_key=f"key-{peer}-{text}",
        author_kind=AuthorKind.AGENT,
        buttons=buttons or [],
    )


async def test_a_wall_comment_is_posted_once_per_guid(vk: tuple[VkEmulator, VkChannel]) -> None:
    emulator, channel = vk
    post = emulator.post("Скидки недели")
    asked = emulator.comment(5, post.id, "Есть размер M?")
    values = {"owner_id": -GROUP, "post_id": post.id, "from_group": GROUP, "guid": "g1"}

    first = await channel.call(
        "wall.createComment", message="Есть", reply_to_comment=asked.id, **values
    )
    again = await channel.call(
        "wall.createComment", message="Есть", reply_to_comment=asked.id, **values
    )

    assert first == again
    assert [(c.text, c.reply_to_comment) for c in emulator.community_comments()] == [
        ("Есть", asked.id)
    ]


async def test_a_comment_not_as_the_community_is_refused_with_error_100(
    vk: tuple[VkEmulator, VkChannel],
) -> None:
    emulator, channel = vk
    post = emulator.post("Скидки недели")

    with pytest.raises(ApiError) as raised:
        await channel.call("wall.createComment", owner_id=-GROUP, post_id=post.id, message="Есть")

    assert raised.value.code == 100 and "from_group" in raised.value.error["error_msg"]


async def test_wall_get_by_id_gives_the_posts_text(vk: tuple[VkEmulator, VkChannel]) -> None:
    emulator, channel = vk
    post = emulator.post("Скидки недели")

    found = await channel.call("wall.getById", posts=f"-{GROUP}_{post.id},-{GROUP}_999999")

    assert [(p["id"], p["text"]) for p in found["items"]] == [(post.id, "Скидки недели")]
