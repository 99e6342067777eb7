"""A core prepares its responder (the knowledge base fits its matcher) when it starts, before it
reports ready and takes messages: the first customer does not wait seconds for the fitting."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.pipeline.responder import Answer, Question
from bridge.settings import Settings
from bridge.store.models import messages
from supportbridge.roles import core
from tests.factories import inbound


class SlowToPrepare:
    def __init__(self) -> None:
        self.may_finish = asyncio.Event()
        self.prepared = False

    async def prepare(self) -> None:
        await self.may_finish.wait()
        self.prepared = True

    async def answer(self, question: Question) -> Answer | None:
        assert self.prepared, "asked before it was prepared"
        return None


async def stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = (
            sa.select(sa.func.count())
            .select_from(messages)
            .where(messages.c.direction == "inbound")
        )
        return int((await conn.execute(query)).scalar_one())


async def test_a_core_is_ready_and_takes_messages_only_once_its_responder_is_prepared(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, monkeypatch
) -> None:
    responder = SlowToPrepare()
    monkeypatch.setattr(core, "load_responder", lambda _settings, _engine: responder)
    stop, started = asyncio.Event(), asyncio.Event()
    await memory_bus.publish_inbound([inbound(1, 1, "where is my order?")])

    running = asyncio.ensure_future(core.run_core(settings, engine, memory_bus, stop, started))
    await asyncio.sleep(0.3)
    assert not started.is_set()
    assert await stored(engine) == 0, "no message is taken while the responder is not ready"

    responder.may_finish.set()
    await asyncio.wait_for(started.wait(), 5)
    for _ in range(100):
        if await stored(engine) == 1:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert await stored(engine) == 1
