"""aiogram reads every answer of the Bot API as a pydantic class made per method; the Telegram
channel keeps those of the methods it calls, so a garbage collection does not make a busy bot
build them again (milliseconds each)."""

from __future__ import annotations

import gc
import weakref

import pytest
from aiogram.methods import GetUpdates, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import Response

from bots.telegram.channel import ANSWER_TYPES


def answer_class(method: type[TelegramMethod[object]]) -> type[object]:
    """As aiogram's session makes it: inside a function, where nothing else holds it."""
    made: type[object] = Response[method.__returning__]  # type: ignore[name-defined]
    return made


@pytest.mark.parametrize("method", [GetUpdates, SendMessage, SendPhoto])
def test_the_answer_class_of_a_method_the_channel_calls_outlives_a_garbage_collection(
    method: type[TelegramMethod[object]],
) -> None:
    made = weakref.ref(answer_class(method))

    gc.collect()

    assert made() is not None and made() in ANSWER_TYPES
