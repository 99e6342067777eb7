"""A visitor's socket is registered before its history is read, and a reply that comes meanwhile
reaches it after its welcome, once: the widget's protocol starts with the welcome."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
from aiohttp import web

from bots.webchat.hub import Hub


class Socket:
    """What the hub uses of a WebSocketResponse: the frames it was sent."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_str(self, text: str) -> None:
        await asyncio.sleep(0)  # a network write: other tasks run meanwhile
        self.sent.append(orjson.loads(text))


def reply(n: int) -> dict[str, Any]:
    return {"type": "message", "id": f"out:{n}", "author": "bot", "text": f"reply {n}"}


async def test_a_reply_pushed_before_the_welcome_is_sent_after_it() -> None:
    hub, socket = Hub(), Socket()
    hub.add("visitor", cast(web.WebSocketResponse, socket))
    await hub.push("visitor", reply(2))
    assert socket.sent == []

    socket.sent.append({"type": "welcome"})  # as the channel sends it, then tells the hub
    await hub.greeted(cast(web.WebSocketResponse, socket), shown=set())

    assert [frame["type"] for frame in socket.sent] == ["welcome", "message"]


async def test_a_reply_the_welcomes_history_showed_is_not_sent_again() -> None:
    hub, socket = Hub(), Socket()
    hub.add("visitor", cast(web.WebSocketResponse, socket))
    await hub.push("visitor", reply(2))
    await hub.push("visitor", reply(3))

    await hub.greeted(cast(web.WebSocketResponse, socket), shown={"out:2"})

    assert [frame["id"] for frame in socket.sent] == ["out:3"]


async def test_once_greeted_a_socket_gets_its_frames_as_they_come() -> None:
    hub, socket = Hub(), Socket()
    hub.add("visitor", cast(web.WebSocketResponse, socket))
    await hub.greeted(cast(web.WebSocketResponse, socket), shown=set())

    await hub.push("visitor", reply(4))

    assert [frame["id"] for frame in socket.sent] == ["out:4"]


async def test_a_reply_pushed_while_the_held_ones_go_out_comes_after_them() -> None:
    hub, socket = Hub(), Socket()
    hub.add("visitor", cast(web.WebSocketResponse, socket))
    await hub.push("visitor", reply(2))
    await hub.push("visitor", reply(3))

    await asyncio.gather(
        hub.greeted(cast(web.WebSocketResponse, socket), shown=set()),
        hub.push("visitor", reply(4)),
    )

    assert [frame["id"] for frame in socket.sent] == ["out:2", "out:3", "out:4"]
