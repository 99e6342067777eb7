"""The Telegram Bot API emulator, driven by two independent clients: aiogram 3 (the product's
library) and python-telegram-bot, so the emulator is not shaped around one of them."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
import telegram.error
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bench.ports import free_port
from emulators.faults import Fault, FaultKind
from emulators.telegram import SECRET_HEADER, TelegramEmulator
from tests.conftest import REPO, serve

TOKEN = "123456:ABC-test_token"
ANNA = 4242
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="helped:yes")]]
)


@pytest.fixture
def emulator() -> TelegramEmulator:
    emulator = TelegramEmulator([TOKEN], seed=7, webhook_retry_delay=0.05)
    emulator.customer(ANNA, first_name="Anna", username="anna_k", language_code="ru")
    return emulator


@pytest.fixture
async def api_url(emulator: TelegramEmulator) -> AsyncIterator[str]:
    async with serve(emulator.app) as url:
        yield url


async def close_quickly(bot: Bot) -> None:
    # aiogram's close() sleeps 250 ms for TLS connections to close; plain HTTP needs no wait
    assert isinstance(bot.session, AiohttpSession)
    if bot.session._session is not None:
        await bot.session._session.close()


@pytest.fixture
async def bot(api_url: str) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))
    yield bot
    await close_quickly(bot)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Receiver:
    """A webhook endpoint that records each push and answers with the next queued reply."""

    def __init__(self, *replies: web.Response) -> None:
        self.pushes: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.replies = deque(replies)
        self.pushed = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.pushes.append((dict(request.headers), await request.json()))
        self.pushed.set()
        return self.replies.popleft() if self.replies else web.json_response({})

    async def wait_for_pushes(self, count: int) -> None:
        async with asyncio.timeout(3):
            while len(self.pushes) < count:
                self.pushed.clear()
                await self.pushed.wait()


async def sent(bot: Bot, text: str = "Hello, Anna") -> Message:
    return await bot.send_message(chat_id=ANNA, text=text, reply_markup=KEYBOARD)


# ---- aiogram -------------------------------------------------------------------------------------


async def test_get_me_answers_the_bot_whose_id_is_the_token_digits(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456 == bot.id
    assert me.is_bot


async def test_customer_message_arrives_via_get_updates_and_offset_confirms_it(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "Где мой заказ?")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.from_user is not None
    assert update.message.text == "Где мой заказ?"
    assert update.message.chat.id == ANNA and update.message.chat.type == "private"
    assert update.message.from_user.language_code == "ru"
    assert [u.update_id for u in await bot.get_updates()] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1) == []


async def test_negative_offset_keeps_only_the_last_updates(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    for text in ("one", "two", "three"):
        emulator.write_text(ANNA, text)
    [last] = await bot.get_updates(offset=-1)
    assert last.message is not None and last.message.text == "three"
    assert [u.update_id for u in await bot.get_updates()] == [last.update_id]


async def test_long_poll_waits_and_wakes_up_on_a_new_message(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    emulator.write_text(ANNA, "hello?")
    [update] = await asyncio.wait_for(poll, 2)
    assert update.message is not None and update.message.text == "hello?"


async def test_long_poll_without_messages_answers_empty_after_its_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert time.monotonic() - started >= 0.95


async def test_second_poller_terminates_the_first_with_conflict(bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    assert await bot.get_updates() == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first


async def test_send_message_reaches_the_customer_with_its_inline_keyboard(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    before = time.time()
    message = await sent(bot)
    [seen] = emulator.bot_messages(ANNA)
    assert seen.message_id == message.message_id
    assert seen.text == "Hello, Anna"
    assert seen.reply_markup == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "helped:yes"}]]
    }
    assert before <= seen.received_at <= time.time()
    assert message.reply_markup is not None
    assert message.reply_markup.model_dump(exclude_none=True) == KEYBOARD.model_dump(
        exclude_none=True
    )


async def test_answer_callback_query_after_a_button_press(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    message = await sent(bot)
    query_id = emulator.press_button(ANNA, message.message_id, "helped:yes")
    query = (await bot.get_updates())[-1].callback_query
    assert query is not None and query.id == query_id
    assert query.data == "helped:yes" and query.from_user.id == ANNA
    assert query.message is not None and query.message.message_id == message.message_id
    assert await bot.answer_callback_query(query_id, text="Thanks!")
    answer = emulator.callback_query(query_id).answer
    assert answer is not None and answer["text"] == "Thanks!"


async def test_answering_a_callback_query_twice_is_rejected(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    query_id = emulator.press_button(ANNA, (await sent(bot)).message_id, "helped:yes")
    await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)


async def test_edit_message_text_is_seen_by_the_customer(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    message = await sent(bot)
    edited = await bot.edit_message_text(
        text="Hello again", chat_id=ANNA, message_id=message.message_id, reply_markup=KEYBOARD
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    [seen] = emulator.bot_messages(ANNA)
    assert seen.text == "Hello, Anna" and seen.current_text == "Hello again"
    assert [edit.text for edit in seen.edits] == ["Hello again"]


async def test_edit_message_text_to_the_same_content_is_not_modified(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    message = await sent(bot)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="Hello, Anna", chat_id=ANNA, message_id=message.message_id, reply_markup=KEYBOARD
        )


async def test_get_file_downloads_a_document_the_customer_sent(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_document(
        ANNA, b"%PDF-1.7 invoice", file_name="invoice.pdf", mime_type="application/pdf"
    )
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_name == "invoice.pdf"
    file = await bot.get_file(update.message.document.file_id)
    assert file.file_size == 16 and file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == b"%PDF-1.7 invoice"


async def test_photo_arrives_with_its_size_and_caption(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_photo(ANNA, b"\xff\xd8jpeg", caption="broken box", width=800, height=600)
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.photo is not None
    [size] = update.message.photo
    assert (size.width, size.height, update.message.caption) == (800, 600, "broken box")
    downloaded = await bot.download(size.file_id)
    assert downloaded is not None and downloaded.read() == b"\xff\xd8jpeg"


async def test_customer_edit_becomes_an_edited_message_update(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    original = emulator.write_text(ANNA, "my order is 123")
    emulator.edit_message(ANNA, original["message_id"], "my order is 124")
    updates = await bot.get_updates()
    edited = updates[-1].edited_message
    assert edited is not None and edited.message_id == original["message_id"]
    assert edited.text == "my order is 124" and edited.edit_date is not None
    assert updates[0].message is not None and updates[0].message.text == "my order is 123"


async def test_rate_limit_fault_raises_retry_after_with_its_delay(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.faults.add(Fault(FaultKind.RATE_LIMIT, retry_after=7), methods="sendMessage", times=1)
    with pytest.raises(TelegramRetryAfter) as raised:
        await sent(bot)
    assert raised.value.retry_after == 7
    await sent(bot)
    assert len(emulator.bot_messages(ANNA)) == 1


async def test_server_error_fault_raises_server_error(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.faults.add(Fault(FaultKind.SERVER_ERROR, status=502), times=1)
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await sent(bot)
    assert emulator.bot_messages(ANNA) == []


async def test_slow_fault_delays_the_answer(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.faults.add(Fault(FaultKind.SLOW, delay=0.3), methods="getMe", times=1)
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.3


async def test_dropped_connection_before_processing_sends_nothing(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.faults.add(Fault(FaultKind.DROP), methods="sendMessage", times=1)
    with pytest.raises(TelegramNetworkError):
        await sent(bot)
    assert emulator.bot_messages(ANNA) == []


async def test_dropped_answer_after_processing_still_delivers_the_message(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.faults.add(
        Fault(FaultKind.DROP, after_processing=True), methods="sendMessage", times=1
    )
    with pytest.raises(TelegramNetworkError):
        await sent(bot)
    assert [m.text for m in emulator.bot_messages(ANNA)] == ["Hello, Anna"]


async def test_blocked_user_raises_forbidden(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.block_bot(ANNA)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await sent(bot)
    update = (await bot.get_updates())[-1].my_chat_member
    assert update is not None and update.new_chat_member.status == "kicked"


async def test_unblocked_user_receives_messages_again(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.block_bot(ANNA)
    emulator.unblock_bot(ANNA)
    await sent(bot)
    assert len(emulator.bot_messages(ANNA)) == 1


async def test_allowed_updates_filters_new_updates_by_type(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    message = await sent(bot)
    [first] = await bot.get_updates(allowed_updates=["message"])
    emulator.press_button(ANNA, message.message_id, "helped:yes")
    emulator.write_text(ANNA, "thanks")
    updates = await bot.get_updates(offset=first.update_id + 1)
    assert [u.message.text for u in updates if u.message] == ["thanks"]
    assert all(u.callback_query is None for u in updates)


async def test_unknown_chat_is_chat_not_found(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(chat_id=777, text="anyone?")


@pytest.mark.parametrize(
    ("text", "parse_mode", "error"),
    [
        ("   ", None, "message text is empty"),
        ("<b></b>", "HTML", "message text is empty"),
        ("x" * 4097, None, "message is too long"),
    ],
)
async def test_text_outside_1_to_4096_after_parsing_is_rejected(
    bot: Bot, emulator: TelegramEmulator, text: str, parse_mode: str | None, error: str
) -> None:
    emulator.write_text(ANNA, "hi")
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_message(chat_id=ANNA, text=text, parse_mode=parse_mode)


async def test_text_of_4096_visible_characters_is_accepted(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    message = await bot.send_message(chat_id=ANNA, text=f"<b>{'я' * 4096}</b>", parse_mode="HTML")
    assert message.text == "я" * 4096


async def test_callback_data_over_64_bytes_is_rejected(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    too_long = "ж" * 33  # 66 bytes in UTF-8
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data=too_long)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(chat_id=ANNA, text="pick", reply_markup=markup)


async def test_unknown_token_is_unauthorized(api_url: str) -> None:
    stranger = Bot("999:unknown", session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await close_quickly(stranger)


async def test_webhook_push_carries_the_secret_token_header(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    receiver = Receiver()
    async with serve(receiver.app) as receiver_url:
        assert await bot.set_webhook(url=f"{receiver_url}/hook", secret_token="s3cret_-TOKEN")
        emulator.write_text(ANNA, "via webhook")
        await receiver.wait_for_pushes(1)
        headers, update = receiver.pushes[0]
        assert headers[SECRET_HEADER] == "s3cret_-TOKEN"
        assert headers["Content-Type"] == "application/json"
        assert update["message"]["text"] == "via webhook"
        assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_webhook_push_is_retried_after_a_non_2xx_answer(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    receiver = Receiver(web.Response(status=500))
    async with serve(receiver.app) as receiver_url:
        await bot.set_webhook(url=f"{receiver_url}/hook")
        emulator.write_text(ANNA, "again")
        await receiver.wait_for_pushes(2)
        assert receiver.pushes[0][1] == receiver.pushes[1][1]
        info = await bot.get_webhook_info()
        assert info.last_error_message is not None and "500" in info.last_error_message


async def test_webhook_answer_with_a_method_call_is_executed(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    reply = web.json_response({"method": "sendMessage", "chat_id": ANNA, "text": "auto-reply"})
    receiver = Receiver(reply)
    async with serve(receiver.app) as receiver_url:
        await bot.set_webhook(url=f"{receiver_url}/hook")
        emulator.write_text(ANNA, "hello")
        messages = await emulator.wait_for_bot_messages(ANNA, 1, within=3)
        assert messages[0].text == "auto-reply"


async def test_aiogram_webhook_handler_accepts_pushes_and_its_reply_is_executed(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"echo: {message.text}")  # answered inside the webhook reply

    app = web.Application()
    handler = SimpleRequestHandler(
        dispatcher, bot, handle_in_background=False, secret_token="hook-secret"
    )
    handler.register(app, path="/hook")
    async with serve(app) as receiver_url:
        await bot.set_webhook(url=f"{receiver_url}/hook", secret_token="hook-secret")
        emulator.write_text(ANNA, "ping")
        messages = await emulator.wait_for_bot_messages(ANNA, 1, within=3)
    assert messages[0].text == "echo: ping"


async def test_get_updates_while_a_webhook_is_set_is_conflict(bot: Bot) -> None:
    await bot.set_webhook(url="http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    await bot.delete_webhook()
    assert await bot.get_updates() == []


async def test_set_webhook_ends_a_waiting_long_poll_with_conflict(bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    await bot.set_webhook(url="http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="terminated by setWebhook request"):
        await poll


async def test_drop_pending_updates_forgets_the_queue(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.write_text(ANNA, "old news")
    assert (await bot.get_webhook_info()).pending_update_count == 1
    await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == []


async def test_secret_token_with_unallowed_characters_is_rejected(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook(url="https://example.org/hook", secret_token="a+b/c=")


# ---- the raw HTTP interface ----------------------------------------------------------------------


async def test_unknown_method_is_404_with_the_documented_envelope(
    http: aiohttp.ClientSession, api_url: str
) -> None:
    async with http.post(f"{api_url}/bot{TOKEN}/sendTelepathy") as response:
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }


async def test_rate_limit_answer_has_retry_after_header_and_parameters(
    http: aiohttp.ClientSession, api_url: str, emulator: TelegramEmulator
) -> None:
    emulator.faults.add(Fault(FaultKind.RATE_LIMIT, retry_after=9), times=1)
    async with http.get(f"{api_url}/bot{TOKEN}/getMe") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "9"
        body = await response.json()
    assert body["description"] == "Too Many Requests: retry after 9"
    assert body["parameters"] == {"retry_after": 9}


async def test_method_names_are_case_insensitive_and_take_query_parameters(
    http: aiohttp.ClientSession, api_url: str, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    url = f"{api_url}/bot{TOKEN}/SENDMESSAGE"
    async with http.get(url, params={"chat_id": str(ANNA), "text": "from a GET"}) as response:
        assert response.status == 200
    assert emulator.bot_messages(ANNA)[0].text == "from a GET"


async def test_json_body_with_a_native_reply_markup_is_accepted(
    http: aiohttp.ClientSession, api_url: str, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    markup = {"inline_keyboard": [[{"text": "No", "callback_data": "helped:no"}]]}
    body = {"chat_id": ANNA, "text": "json", "reply_markup": markup}
    async with http.post(f"{api_url}/bot{TOKEN}/sendMessage", json=body) as response:
        assert (await response.json())["result"]["reply_markup"] == markup
    assert emulator.bot_messages(ANNA)[0].reply_markup == markup


async def test_customer_http_api_writes_as_a_user_and_reads_the_bot_replies(
    http: aiohttp.ClientSession, api_url: str, bot: Bot
) -> None:
    profile = {"first_name": "Boris", "username": "boris", "language_code": "en"}
    async with http.post(
        f"{api_url}/_emulator/users/77/messages", json={"text": "help", **profile}
    ) as response:
        assert response.status == 200
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.from_user is not None
    assert update.message.from_user.username == "boris"
    await bot.send_message(chat_id=77, text="How can I help?", reply_markup=KEYBOARD)
    async with http.get(f"{api_url}/_emulator/users/77/bot-messages") as response:
        [message] = (await response.json())["result"]
    assert message["text"] == "How can I help?" and message["received_at"] > 0
    press = {"message_id": message["message_id"], "callback_data": "helped:yes"}
    async with http.post(f"{api_url}/_emulator/users/77/button-presses", json=press) as response:
        query_id = (await response.json())["result"]["callback_query_id"]
    assert (await bot.get_updates(offset=update.update_id + 1))[0].callback_query is not None
    async with http.get(f"{api_url}/_emulator/callback-queries/{query_id}") as response:
        assert (await response.json())["result"]["answer"] is None


async def test_sent_messages_log_lists_every_send_across_chats_in_receive_order(
    http: aiohttp.ClientSession, api_url: str, bot: Bot, emulator: TelegramEmulator
) -> None:
    for user_id in (ANNA, 77):
        emulator.write_text(user_id, "hi")
    for user_id in (77, ANNA, 77):
        await bot.send_message(chat_id=user_id, text=f"to {user_id}")
    async with http.get(f"{api_url}/_emulator/bot-messages") as response:
        log = (await response.json())["result"]
    assert [entry["chat_id"] for entry in log] == [77, ANNA, 77]
    times = [entry["received_at"] for entry in log]
    assert times == sorted(times)


async def test_customer_http_api_edits_and_blocks(
    http: aiohttp.ClientSession, api_url: str, bot: Bot, emulator: TelegramEmulator
) -> None:
    message_id = emulator.write_text(ANNA, "order 1")["message_id"]
    edit_url = f"{api_url}/_emulator/users/{ANNA}/messages/{message_id}/edit"
    async with http.post(edit_url, json={"text": "order 2"}) as response:
        assert response.status == 200
    async with http.post(f"{api_url}/_emulator/users/{ANNA}/block") as response:
        assert response.status == 200
    updates = await bot.get_updates()
    assert updates[1].edited_message is not None
    assert updates[1].edited_message.text == "order 2"
    assert updates[2].my_chat_member is not None


async def test_customer_http_api_uploads_a_document_as_multipart(
    http: aiohttp.ClientSession, api_url: str, bot: Bot
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", b"scan", filename="scan.png", content_type="image/png")
    form.add_field("caption", "my receipt")
    async with http.post(f"{api_url}/_emulator/users/77/documents", data=form) as response:
        assert response.status == 200
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.document is not None
    assert update.message.document.mime_type == "image/png"
    assert update.message.caption == "my receipt"


async def test_customer_http_api_rejects_a_press_on_a_missing_button(
    http: aiohttp.ClientSession, api_url: str
) -> None:
    press = {"message_id": 1, "callback_data": "nope"}
    async with http.post(f"{api_url}/_emulator/users/77/button-presses", json=press) as response:
        assert response.status == 400
        assert "no message" in (await response.json())["description"]


async def test_fault_endpoint_lets_another_process_inject_a_rate_limit(
    http: aiohttp.ClientSession, api_url: str, bot: Bot
) -> None:
    spec = {"kind": "rate_limit", "retry_after": 4, "methods": ["getMe"], "times": 1}
    async with http.post(f"{api_url}/_emulator/faults", json=spec) as response:
        assert response.status == 201
    with pytest.raises(TelegramRetryAfter):
        await bot.get_me()
    async with http.get(f"{api_url}/_emulator/faults") as response:
        assert await response.json() == []


# ---- python-telegram-bot, the second client --------------------------------------------------


@pytest.fixture
async def ptb(api_url: str) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(
        TOKEN, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot"
    ) as ptb:
        yield ptb


async def test_ptb_initialises_with_get_me(ptb: telegram.Bot) -> None:
    assert ptb.id == 123456
    assert ptb.username == "emulated_123456_bot"


async def test_ptb_receives_a_customer_message_via_get_updates(
    ptb: telegram.Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hello from PTB's side")
    [update] = await ptb.get_updates(timeout=1)
    assert update.message is not None and update.message.text == "hello from PTB's side"
    assert update.effective_user is not None and update.effective_user.username == "anna_k"
    assert await ptb.get_updates(offset=update.update_id + 1) == ()


async def test_ptb_sends_a_message_with_an_inline_keyboard(
    ptb: telegram.Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    markup = telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton("Yes", callback_data="helped:yes")]]
    )
    message = await ptb.send_message(ANNA, "Hi from PTB", reply_markup=markup)
    assert message.reply_markup == markup
    [seen] = emulator.bot_messages(ANNA)
    assert seen.text == "Hi from PTB"
    assert seen.reply_markup == markup.to_dict()


async def test_ptb_maps_chat_not_found_to_bad_request(ptb: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match="Chat not found"):
        await ptb.send_message(777, "anyone?")


async def test_ptb_maps_a_blocked_user_to_forbidden(
    ptb: telegram.Bot, emulator: TelegramEmulator
) -> None:
    emulator.write_text(ANNA, "hi")
    emulator.block_bot(ANNA)
    with pytest.raises(telegram.error.Forbidden, match="blocked by the user"):
        await ptb.send_message(ANNA, "still there?")


async def test_ptb_downloads_a_document_through_the_file_url(
    ptb: telegram.Bot, emulator: TelegramEmulator
) -> None:
    document = emulator.write_document(ANNA, b"contract", file_name="contract.txt")["document"]
    file = await ptb.get_file(document["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"contract"


# ---- standalone ----------------------------------------------------------------------------------


async def test_standalone_entry_point_serves_the_given_token(
    http: aiohttp.ClientSession,
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "emulators.telegram", "--port", str(port), "--token", "42:XY"],
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        body: dict[str, Any] = {}
        async with asyncio.timeout(15):
            while not body:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/bot42:XY/getMe") as response:
                        body = await response.json()
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)  # the process is still starting
        assert body["result"]["id"] == 42
        upload = {"data_base64": base64.b64encode(b"x").decode(), "file_name": "x.txt"}
        async with http.post(
            f"http://127.0.0.1:{port}/_emulator/users/5/documents", json=upload
        ) as response:
            assert response.status == 200
    finally:
        process.terminate()
        await process.wait()


async def test_a_channel_post_arrives_as_its_automatic_forward_into_the_discussion_group(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    emulator.post_to_channel("New collection")

    [update] = await bot.get_updates()

    assert update.message is not None and update.message.is_automatic_forward
    assert update.message.chat.type == "supergroup"
    assert update.message.forward_origin is not None
    assert update.message.forward_origin.type == "channel"


async def test_a_reply_in_the_group_lands_in_the_thread_of_the_comment_it_answers(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    group = emulator.discussion_group()
    post = emulator.post_to_channel("New collection")["message_id"]
    comment = emulator.comment(501, post, "Delivery to Kazan?")

    sent = await bot.send_message(
        group.id, "Yes", reply_parameters=ReplyParameters(message_id=comment["message_id"])
    )

    assert sent.message_thread_id == post
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.message_id == comment["message_id"]


async def test_a_reply_to_a_message_not_in_the_group_is_refused_unless_allowed_without_it(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    group = emulator.discussion_group()

    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(group.id, "Yes", reply_parameters=ReplyParameters(message_id=99))
    sent = await bot.send_message(
        group.id,
        "Yes",
        reply_parameters=ReplyParameters(message_id=99, allow_sending_without_reply=True),
    )
    assert sent.reply_to_message is None


async def test_a_message_to_an_unknown_thread_of_the_group_is_refused(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    group = emulator.discussion_group()

    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group.id, "Yes", message_thread_id=77)
