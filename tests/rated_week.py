"""Ratings of a known week, straight into the store, for the tests of CSAT (the figures worked out
by hand):

| request | agent | network  | rating           |
|---------|-------|----------|------------------|
| 1       | Anna  | telegram | 5                |
| 2       | Anna  | vk       | 2                |
| 3       | Anna  | telegram | 4                |
| 4       | Anna  | vk       | not rated        |
| 5       | Boris | telegram | 3                |
| 6       | Boris | vk       | 5, the next week |

Overall 5 asked, 4 rated, mean 14 / 4 = 3.5, rated 4-5: 2 of 4. Anna 4 asked, 3 rated, mean
11 / 3, 2 of 3 rated 4-5; Boris 1 asked, mean 3, none rated 4-5. Telegram 3 asked, 3 rated, mean
12 / 3 = 4, 2 of 3 rated 4-5; VK 2 asked, 1 rated, mean 2, none rated 4-5.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import AuthorKind, ConversationState, Network
from bridge.store.models import csat_ratings
from tests.known_week import Week, at

TG, VK = Network.TELEGRAM, Network.VK


async def rated_week(engine: AsyncEngine) -> None:
    week = Week(engine)
    anna, boris = await week.agent("Anna"), await week.agent("Boris")
    plan = [
        (anna, TG, 5, at(0, 10)),
        (anna, VK, 2, at(1, 10)),
        (anna, TG, 4, at(2, 10)),
        (anna, VK, None, at(3, 10)),
        (boris, TG, 3, at(4, 10)),
        (boris, VK, 5, at(7, 10)),
    ]
    for agent, network, rating, when in plan:
        cid = await week.conversation(network, when, ConversationState.RESOLVED)
        request = await week.message(cid, network, AuthorKind.SYSTEM, when)
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(csat_ratings).values(
                    request_message_id=request,
                    conversation_id=cid,
                    agent_id=agent,
                    network=network,
                    asked_at=when,
                    rating=rating,
                    rated_at=when + dt.timedelta(minutes=1) if rating else None,
                )
            )
