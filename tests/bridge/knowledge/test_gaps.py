"""Knowledge gaps: the questions without a confident answer, grouped by likeness."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.knowledge.gaps import cluster, knowledge_gaps, unanswered_questions
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from tests.factories import ScriptedResponder, entries, inbound

QUESTIONS = [
    "как подключить iptv на телевизоре",
    "iptv не показывает на телевизоре",
    "как настроить iptv на тв",
    "можно ли заморозить договор на лето",
    "заморозить договор на время отпуска",
    "приостановить договор на месяц",
    "сколько стоит домофон",
]


def test_alike_questions_form_one_gap_biggest_first() -> None:
    gaps = cluster(QUESTIONS)

    assert [gap.count for gap in gaps] == [3, 3, 1]
    groups = [set(gap.examples) for gap in gaps]
    assert set(QUESTIONS[:3]) in groups and set(QUESTIONS[3:6]) in groups


def test_a_question_asked_many_times_is_one_example_counted_many_times() -> None:
    (gap,) = cluster(["где мой роутер"] * 4)

    assert (gap.count, gap.examples) == (4, ["где мой роутер"])


async def test_only_questions_without_a_confident_answer_are_gaps(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    sure = {"тариф?": 0.97, "оператор": 0.97}
    pipeline = Pipeline(
        engine, memory_bus, settings, ScriptedResponder(lambda text: sure.get(text, 0.3))
    )
    for chat, text in enumerate(["тариф?", "оператор", *QUESTIONS[:2]], 1):
        await pipeline.handle(entries(inbound(chat, 1, text)))

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert sorted(await unanswered_questions(engine, since)) == sorted(QUESTIONS[:2])
    (gap,) = await knowledge_gaps(engine, since)
    assert gap.count == 2
