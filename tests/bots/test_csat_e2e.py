"""The customer rates the help end to end, on every network: each network's client library
against its emulator, through the real pipeline and sender (the harness: network_harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.actions import resolve
from bridge.inbox.ratings import QUESTION
from bridge.pipeline import phrases
from bridge.settings import Settings
from bridge.store.models import csat_ratings
from tests.network_harness import NETWORKS, AnyNetwork, Bridge, open_bridge


@pytest.fixture(params=list(NETWORKS))
async def bridge(
    request: pytest.FixtureRequest, engine: AsyncEngine, settings: Settings
) -> AsyncIterator[Bridge[AnyNetwork]]:
    net = NETWORKS[request.param]()
    async with open_bridge(net, engine, settings, None, net.receivers[0]) as bridge:
        yield bridge


async def test_the_customer_presses_5_under_the_request_and_the_rating_is_stored(
    bridge: Bridge[AnyNetwork],
) -> None:
    net = bridge.net
    net.customer(971, "ru")
    await bridge.customer_writes(971, "Где мой заказ? Жду уже неделю")
    await bridge.agent_replies(971, "Ваш заказ в пути, будет завтра")
    await net.wait_sent(971, 2)

    await resolve(bridge.engine, bridge.bus, await bridge.conversation_id(971))
    request = (await net.wait_sent(971, 3))[-1]
    buttons = [button for row in request.buttons for button in row]
    assert request.text == QUESTION["ru"]
    assert [label for label, _ in buttons] == ["1 😞", "2 🙁", "3 😐", "4 🙂", "5 😍"]

    net.press(971, request, buttons[4][1])
    thanks = (await net.wait_sent(971, 4))[-1]

    assert thanks.text.startswith(phrases.text("rated", "ru"))
    assert await bridge.rows(sa.select(csat_ratings.c.rating, csat_ratings.c.agent_id)) == [
        (5, bridge.agent_id)
    ]
