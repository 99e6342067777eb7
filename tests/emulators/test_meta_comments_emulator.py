"""The Page's and the Instagram account's comments in the emulators, driven with raw HTTP: the
webhook changes, the public replies, and the private reply's once-within-7-days rule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulators.facebook import FacebookEmulator
from emulators.instagram import InstagramEmulator
from tests.emulators.test_facebook_emulator import SECRET, TOKEN, VERIFY, serve

WEEK = 7 * 24 * 3600


class Changes:
    """The webhook changes pushed to a receiver, however they were batched."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def first(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    async def verify(self, request: web.Request) -> web.Response:
        return web.Response(text=request.query["hub.challenge"])

    async def receive(self, request: web.Request) -> web.Response:
        for entry in json.loads(await request.read())["entry"]:
            self.received.extend(entry.get("changes", []))
        self.arrived.set()
        return web.Response(text="EVENT_RECEIVED")


World = tuple[FacebookEmulator, str, Changes, aiohttp.ClientSession]


async def world_of(emulator: FacebookEmulator) -> AsyncIterator[World]:
    changes = Changes()
    hook = web.Application()
    hook.add_routes([web.get("/hook", changes.verify), web.post("/hook", changes.receive)])
    async with serve(emulator.app) as api, serve(hook) as url, aiohttp.ClientSession() as http:
        await emulator.subscribe(f"{url}/hook", VERIFY)
        yield emulator, api, changes, http


@pytest.fixture
async def page() -> AsyncIterator[World]:
    async for each in world_of(FacebookEmulator(TOKEN, app_secret=SECRET, seed=3)):
        yield each


@pytest.fixture
async def instagram() -> AsyncIterator[World]:
    async for each in world_of(InstagramEmulator(TOKEN, app_secret=SECRET, seed=3)):
        yield each


async def call(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, params={"access_token": TOKEN}, json=body) as answer:
        return answer.status, await answer.json()


async def test_a_comment_is_pushed_as_a_feed_change_naming_its_post_and_parent(
    page: World,
) -> None:
    emulator, _, changes, _ = page
    post = emulator.comments.add_post("Sale")
    first = emulator.comments.comment("501", post.id, "Size M?", name="Anna")
    emulator.comments.comment("502", post.id, "Me too", reply_to=first.id)

    top, reply = await changes.first(2)

    assert top["field"] == "feed"
    assert {k: top["value"][k] for k in ("item", "verb", "post_id", "comment_id", "parent_id")} == {
        "item": "comment",
        "verb": "add",
        "post_id": post.id,
        "comment_id": first.id,
        "parent_id": post.id,
    }
    assert top["value"]["from"] == {"id": first.from_id, "name": "Anna"}
    assert reply["value"]["parent_id"] == first.id


async def test_a_page_change_names_the_commenter_by_an_id_that_is_not_their_psid(
    page: World,
) -> None:
    emulator, _, changes, _ = page
    post = emulator.comments.add_post("Sale")
    emulator.comments.comment("501", post.id, "Size M?")
    emulator.comments.comment("501", post.id, "And L?")
    emulator.comments.comment("502", post.id, "Me too")

    first, again, other = (change["value"]["from"]["id"] for change in await changes.first(3))

    assert first == again, "one person, one id in the changes"
    assert first != "501" and other not in (first, "502")


async def test_a_private_reply_answers_with_the_psid_the_comment_did_not_give(
    page: World,
) -> None:
    emulator, api, _, http = page
    post = emulator.comments.add_post("Sale")
    comment = emulator.comments.comment("501", post.id, "Size M?")
    body = {"recipient": {"comment_id": comment.id}, "message": {"text": "Hi"}}

    status, answer = await call(http, f"{api}/v19.0/me/messages", body)

    assert status == 200 and answer["recipient_id"] == "501" != comment.from_id
    assert [m.text for m in emulator.page_messages("501")] == ["Hi"]


async def test_the_page_answers_a_comment_in_public_under_it(page: World) -> None:
    emulator, api, _, http = page
    post = emulator.comments.add_post("Sale")
    comment = emulator.comments.comment("501", post.id, "Size M?")

    status, answer = await call(http, f"{api}/v19.0/{comment.id}/comments", {"message": "Yes"})

    assert status == 200
    (reply,) = emulator.comments.account_comments()
    assert (answer["id"], reply.parent_id, reply.text) == (reply.id, comment.id, "Yes")


async def test_the_replies_to_a_comment_are_read_newest_first_with_their_authors(
    page: World,
) -> None:
    emulator, api, _, http = page
    post = emulator.comments.add_post("Sale")
    comment = emulator.comments.comment("501", post.id, "Size M?")
    emulator.comments.comment("502", post.id, "Size L?", name="Boris", reply_to=comment.id)
    await call(http, f"{api}/v19.0/{comment.id}/comments", {"message": "Both"})

    params = {"access_token": TOKEN, "order": "reverse_chronological"}
    async with http.get(f"{api}/v19.0/{comment.id}/comments", params=params) as answer:
        replies = (await answer.json())["data"]
    async with http.get(f"{api}/v19.0/me", params={"access_token": TOKEN}) as answer:
        me = await answer.json()

    assert [(r["message"], r["from"]["id"]) for r in replies] == [
        ("Both", emulator.page_id),
        ("Size L?", emulator.comments.author_id("502")),
    ]
    assert me == {"id": emulator.page_id}


async def test_a_private_reply_goes_once_and_a_second_is_refused_with_10900(page: World) -> None:
    emulator, api, _, http = page
    post = emulator.comments.add_post("Sale")
    comment = emulator.comments.comment("501", post.id, "Size M?")
    body = {"recipient": {"comment_id": comment.id}, "message": {"text": "Hi"}}

    first = await call(http, f"{api}/v19.0/me/messages", body)
    second = await call(http, f"{api}/v19.0/me/messages", body)

    assert first[0] == 200
    assert second[0] == 400 and second[1]["error"]["code"] == 10900
    assert [m.text for m in emulator.page_messages("501")] == ["Hi"]


async def test_a_private_reply_after_7_days_is_outside_the_window(page: World) -> None:
    emulator, api, _, http = page
    post = emulator.comments.add_post("Sale")
    comment = emulator.comments.comment("501", post.id, "Size M?")
    emulator.comments.age_comment(comment.id, WEEK + 1)
    body = {"recipient": {"comment_id": comment.id}, "message": {"text": "Hi"}}

    status, answer = await call(http, f"{api}/v19.0/me/messages", body)

    assert status == 400
    assert (answer["error"]["code"], answer["error"]["error_subcode"]) == (10, 2018278)
    assert emulator.page_messages("501") == []


async def test_instagram_pushes_a_comment_and_answers_it_on_replies_only(
    instagram: World,
) -> None:
    emulator, api, changes, http = instagram
    media = emulator.comments.add_post("New in")
    comment = emulator.comments.comment("601", media.id, "Price?", name="anna.p")

    (change,) = await changes.first(1)
    wrong = await call(http, f"{api}/v19.0/{comment.id}/comments", {"message": "10 $"})
    right = await call(http, f"{api}/v19.0/{comment.id}/replies", {"message": "10 $"})

    assert change == {
        "field": "comments",
        "value": {
            "id": comment.id,
            "from": {"id": "601", "username": "anna.p"},
            "text": "Price?",
            "media": {"id": media.id, "media_product_type": "FEED"},
        },
    }
    assert wrong[0] == 400 and wrong[1]["error"]["code"] == 100
    assert right[0] == 200
    assert [c.text for c in emulator.comments.account_comments()] == ["10 $"]


async def test_an_instagram_private_reply_names_the_igsid_the_comment_gave(
    instagram: World,
) -> None:
    emulator, api, _, http = instagram
    media = emulator.comments.add_post("New in")
    comment = emulator.comments.comment("601", media.id, "Price?")
    body = {"recipient": {"comment_id": comment.id}, "message": {"text": "10 $"}}

    status, answer = await call(http, f"{api}/v19.0/me/messages", body)

    assert status == 200 and answer["recipient_id"] == comment.from_id == "601"
