"""What a test or the sandbox does as Telegram users: write text, photos and documents to a
bot, edit them, press inline buttons, block the bot; and read what the bot sent, with the
emulator's own receive time of each send (the delivery benchmark's evidence). A brand connects
its Telegram Business account to the bot, changes or ends the connection, and its customers
write, edit and delete messages in their chats with the account. A brand's channel posts, and
users comment on them in its discussion group."""

from __future__ import annotations

import base64
import copy
import random
import time

from emulators.signals import Signal
from emulators.telegram import channels
from emulators.telegram.channels import DiscussionGroup
from emulators.telegram.state import (
    JSON,
    Bot,
    BotMessage,
    BusinessConnection,
    CallbackQueryRecord,
    Chat,
    Customer,
    StoredFile,
)


class CustomerSide:
    """The customers of the emulated bots (`bots`, by token; the first one unless a call names
    another by its id); `bot_sent` fires whenever a bot sends or edits a message."""

    def __init__(
        self, bots: dict[str, Bot], rng: random.Random, bot_sent: Signal, first_message_id: int = 1
    ) -> None:
        self._bots = bots
        self._first_message_id = first_message_id
        self._default_bot = next(iter(bots.values()))
        self._rng = rng
        self._bot_sent = bot_sent
        self._customers: dict[int, Customer] = {}

    def customer(
        self,
        user_id: int,
        *,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> Customer:
        """Create or update the Telegram profile of user `user_id`."""
        if user_id <= 0:
            raise ValueError("Telegram user ids are positive")
        if not first_name:
            raise ValueError("a Telegram user always has a first name")
        profile = Customer(user_id, first_name, last_name, username, language_code)
        self._customers[user_id] = profile
        for bot in self._bots.values():
            if (chat := bot.chats.get(user_id)) is not None:
                chat.customer = profile
        return profile

    def write_text(self, user_id: int, text: str, *, bot: int | None = None) -> JSON:
        """User `user_id` writes `text` to the bot; returns the Message the bot will receive."""
        if not text.strip():
            raise ValueError("Telegram does not send an empty message")
        state = self._bot(bot)
        return self._write(state, self._writable_chat(state, user_id), {"text": text})

    def write_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        bot: int | None = None,
    ) -> JSON:
        state = self._bot(bot)
        chat = self._writable_chat(state, user_id)
        stored = self._store_file(state, data, f"photos/file_{len(state.files)}.jpg", "image/jpeg")
        size = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(data),
        }
        return self._write(state, chat, _with_caption({"photo": [size]}, caption))

    def write_document(
        self,
        user_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        bot: int | None = None,
    ) -> JSON:
        state = self._bot(bot)
        chat = self._writable_chat(state, user_id)
        extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        path = f"documents/file_{len(state.files)}.{extension}"
        stored = self._store_file(state, data, path, mime_type)
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        return self._write(state, chat, _with_caption({"document": document}, caption))

    def edit_message(
        self, user_id: int, message_id: int, text: str, *, bot: int | None = None
    ) -> JSON:
        """The customer edits their message (its text, or a photo's/document's caption)."""
        state = self._bot(bot)
        chat = state.chats.get(user_id)
        message = chat.customer_messages.get(message_id) if chat is not None else None
        if message is None:
            raise ValueError(f"user {user_id} has no message {message_id}")
        if not text.strip():
            raise ValueError("an edit cannot empty the message")
        message["text" if "text" in message else "caption"] = text
        message["edit_date"] = int(time.time())
        state.add_update("edited_message", message)
        return copy.deepcopy(message)

    def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        bot: int | None = None,
        business: str | None = None,
    ) -> str:
        """The customer presses an inline button of a bot message (of one the bot sent in the
        chat of the business connection `business`); returns the callback query id."""
        state = self._bot(bot)
        if business is not None:
            chat = state.business_chats.get((business, user_id))
        else:
            chat = state.chats.get(user_id)
        message = chat.bot_messages.get(message_id) if chat is not None else None
        if chat is None or message is None:
            raise ValueError(f"the bot sent no message {message_id} to user {user_id}")
        markup = message.current_reply_markup or {}
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        if not any(button.get("callback_data") == callback_data for button in buttons):
            raise ValueError(f"message {message_id} has no button with data {callback_data!r}")
        query_id = str(self._rng.getrandbits(63))
        state.callbacks[query_id] = CallbackQueryRecord(
            query_id, user_id, message_id, callback_data, time.time()
        )
        query = {
            "id": query_id,
            "from": chat.customer.user_json(),
            "message": state.message_json(chat, message),
            "chat_instance": chat.instance,
            "data": callback_data,
        }
        state.add_update("callback_query", query)
        return query_id

    def block_bot(self, user_id: int, *, bot: int | None = None) -> None:
        self._set_blocked(self._bot(bot), user_id, blocked=True)

    def unblock_bot(self, user_id: int, *, bot: int | None = None) -> None:
        self._set_blocked(self._bot(bot), user_id, blocked=False)

    def bot_messages(self, user_id: int, *, bot: int | None = None) -> list[BotMessage]:
        """What the bot sent to user `user_id`, oldest first."""
        chat = self._bot(bot).chats.get(user_id)
        return list(chat.bot_messages.values()) if chat is not None else []

    async def wait_for_bot_messages(
        self, user_id: int, count: int, *, within: float = 5.0, bot: int | None = None
    ) -> list[BotMessage]:
        """Wait until the bot has sent at least `count` messages to user `user_id`."""
        await self._bot_sent.wait_until(
            lambda: len(self.bot_messages(user_id, bot=bot)) >= count, within=within
        )
        return self.bot_messages(user_id, bot=bot)

    def sent_file(self, file_id: str, *, bot: int | None = None) -> bytes:
        """The content of a file the bot sent, as the customer's app downloads it."""
        return self._bot(bot).files[file_id].data

    def sent_messages(self, *, bot: int | None = None) -> list[BotMessage]:
        """Every message the bot sent, to any chat, in the order the emulator received them."""
        return list(self._bot(bot).sent)

    def callback_query(self, query_id: str, *, bot: int | None = None) -> CallbackQueryRecord:
        return self._bot(bot).callbacks[query_id]

    # ---- Telegram Business --------------------------------------------------------------------

    def connect_business(
        self,
        owner_id: int,
        *,
        first_name: str = "Brand",
        can_reply: bool = True,
        bot: int | None = None,
    ) -> str:
        """The owner of a business account connects it to the bot (a `business_connection`
        update); returns the connection's id."""
        state = self._bot(bot)
        owner = self._customers.get(owner_id) or self.customer(owner_id, first_name=first_name)
        connection = BusinessConnection(
            _opaque_id(self._rng, 12), owner, int(time.time()), can_reply=can_reply
        )
        state.connections[connection.id] = connection
        state.add_update("business_connection", connection.as_json())
        return connection.id

    def change_business_connection(
        self,
        connection_id: str,
        *,
        enabled: bool | None = None,
        can_reply: bool | None = None,
        bot: int | None = None,
    ) -> None:
        """The owner disconnects the bot (`enabled` False), connects it again, or changes its
        right to reply: a `business_connection` update with the connection as it now is."""
        state = self._bot(bot)
        connection = self._connection(state, connection_id)
        if enabled is not None:
            connection.is_enabled = enabled
        if can_reply is not None:
            connection.can_reply = can_reply
        state.add_update("business_connection", connection.as_json())

    def write_business(
        self, connection_id: str, user_id: int, text: str, *, bot: int | None = None
    ) -> JSON:
        """User `user_id` writes `text` to the business account: a `business_message`."""
        if not text.strip():
            raise ValueError("Telegram does not send an empty message")
        state = self._bot(bot)
        chat = self._business_chat(state, connection_id, user_id)
        message_id = chat.next_message_id()
        message: JSON = {
            "message_id": message_id,
            "from": chat.customer.user_json(),
            "chat": chat.customer.chat_json(),
            "date": int(time.time()),
            "business_connection_id": connection_id,
            "text": text,
        }
        chat.customer_messages[message_id] = message
        chat.last_incoming_at = time.time()
        _business_update(state, chat, "business_message", message)
        return copy.deepcopy(message)

    def edit_business(
        self,
        connection_id: str,
        user_id: int,
        message_id: int,
        text: str,
        *,
        bot: int | None = None,
    ) -> JSON:
        """The customer edits a message of theirs in the business chat."""
        state = self._bot(bot)
        chat = self._business_chat(state, connection_id, user_id)
        message = chat.customer_messages.get(message_id)
        if message is None:
            raise ValueError(f"user {user_id} has no message {message_id} in this business chat")
        message["text"] = text
        message["edit_date"] = int(time.time())
        _business_update(state, chat, "edited_business_message", message)
        return copy.deepcopy(message)

    def delete_business(
        self, connection_id: str, user_id: int, message_ids: list[int], *, bot: int | None = None
    ) -> None:
        """The customer deletes messages of theirs: one `deleted_business_messages`."""
        state = self._bot(bot)
        chat = self._business_chat(state, connection_id, user_id)
        if not message_ids or any(m not in chat.customer_messages for m in message_ids):
            raise ValueError(f"user {user_id} has not all of {message_ids} in this business chat")
        for message_id in message_ids:
            del chat.customer_messages[message_id]
        deleted = {
            "business_connection_id": connection_id,
            "chat": chat.customer.chat_json(),
            "message_ids": message_ids,
        }
        _business_update(state, chat, "deleted_business_messages", deleted)

    def age_business_chat(
        self, connection_id: str, user_id: int, seconds: float, *, bot: int | None = None
    ) -> None:
        """Move the customer's last message in the business chat `seconds` into the past."""
        chat = self._business_chat(self._bot(bot), connection_id, user_id)
        if chat.last_incoming_at is None:
            raise ValueError(f"user {user_id} never wrote in this business chat")
        chat.last_incoming_at -= seconds

    def business_messages(
        self, connection_id: str, user_id: int, *, bot: int | None = None
    ) -> list[BotMessage]:
        """What the bot sent on the business account's behalf to user `user_id`."""
        chat = self._bot(bot).business_chats.get((connection_id, user_id))
        return list(chat.bot_messages.values()) if chat is not None else []

    async def wait_for_business_messages(
        self,
        connection_id: str,
        user_id: int,
        count: int,
        *,
        within: float = 5.0,
        bot: int | None = None,
    ) -> list[BotMessage]:
        await self._bot_sent.wait_until(
            lambda: len(self.business_messages(connection_id, user_id, bot=bot)) >= count,
            within=within,
        )
        return self.business_messages(connection_id, user_id, bot=bot)

    @staticmethod
    def _connection(bot: Bot, connection_id: str) -> BusinessConnection:
        connection = bot.connections.get(connection_id)
        if connection is None:
            raise ValueError(f"no business connection {connection_id!r}")
        return connection

    def _business_chat(self, bot: Bot, connection_id: str, user_id: int) -> Chat:
        connection = self._connection(bot, connection_id)
        chat = bot.business_chats.get((connection_id, user_id))
        if chat is None:
            profile = self._customers.get(user_id) or self.customer(
                user_id, first_name=f"Customer {user_id}"
            )
            chat = Chat(
                profile,
                instance=str(self._rng.getrandbits(63)),
                last_message_id=self._first_message_id - 1,
                business=connection,
            )
            bot.business_chats[(connection_id, user_id)] = chat
        return chat

    def discussion_group(
        self,
        *,
        channel_title: str = "Brand news",
        channel_username: str | None = "brand_news",
        bot: int | None = None,
    ) -> DiscussionGroup:
        """The brand's channel and its linked discussion group, with the bot a member; made on
        the first call, the same one after (one channel a bot here)."""
        state = self._bot(bot)
        if state.groups:
            return next(iter(state.groups.values()))
        # supergroup and channel ids are -100 followed by the peer's id
        group = DiscussionGroup(
            id=-1_000_000_000_000 - self._rng.randint(10**9, 2 * 10**9),
            title=f"{channel_title} chat",
            channel_id=-1_000_000_000_000 - self._rng.randint(10**9, 2 * 10**9),
            channel_title=channel_title,
            channel_username=channel_username,
            # as in private chats: a restarted sandbox must not repeat the ids the product kept
            last_message_id=self._first_message_id - 1,
        )
        state.groups[group.id] = group
        return group

    def post_to_channel(self, text: str, *, bot: int | None = None) -> JSON:
        """The brand posts `text` in its channel; returns the post's forward in the group,
        whose message_id names the post's thread of comments."""
        if not text.strip():
            raise ValueError("Telegram does not post an empty message")
        state = self._bot(bot)
        return channels.post(state, self.discussion_group(bot=bot), text)

    def comment(
        self,
        user_id: int,
        post_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        bot: int | None = None,
    ) -> JSON:
        """User `user_id` comments on the post `post_id` (its forward's id in the group), as a
        reply to the post or to the comment `reply_to` under it."""
        if not text.strip():
            raise ValueError("Telegram does not send an empty message")
        state = self._bot(bot)
        author = self._customers.get(user_id) or self.customer(
            user_id, first_name=f"Customer {user_id}"
        )
        group = self.discussion_group(bot=bot)
        return channels.comment(state, group, author, post_id, text, reply_to or post_id)

    def edit_comment(self, message_id: int, text: str, *, bot: int | None = None) -> JSON:
        if not text.strip():
            raise ValueError("an edit cannot empty the message")
        state = self._bot(bot)
        return channels.edit_comment(state, self.discussion_group(bot=bot), message_id, text)

    def group_messages(self, *, bot: int | None = None) -> list[JSON]:
        """Everything in the discussion group, the bot's replies included, oldest first."""
        group = self.discussion_group(bot=bot)
        return [copy.deepcopy(m) for _, m in sorted(group.messages.items())]

    def _bot(self, bot_id: int | None) -> Bot:
        if bot_id is None:
            return self._default_bot
        for state in self._bots.values():
            if state.id == bot_id:
                return state
        raise ValueError(f"no emulated bot with id {bot_id}")

    def _open_chat(self, bot: Bot, user_id: int) -> Chat:
        chat = bot.chats.get(user_id)
        if chat is None:
            profile = self._customers.get(user_id) or self.customer(
                user_id, first_name=f"Customer {user_id}"
            )
            chat = Chat(
                profile,
                instance=str(self._rng.getrandbits(63)),
                last_message_id=self._first_message_id - 1,
            )
            bot.chats[user_id] = chat
        return chat

    def _writable_chat(self, bot: Bot, user_id: int) -> Chat:
        chat = self._open_chat(bot, user_id)
        if chat.blocked:
            raise ValueError(f"user {user_id} has blocked the bot; unblock it first")
        return chat

    def _write(self, bot: Bot, chat: Chat, content: JSON) -> JSON:
        message = {
            "message_id": chat.next_message_id(),
            "from": chat.customer.user_json(),
            "chat": chat.customer.chat_json(),
            "date": int(time.time()),
            **content,
        }
        chat.customer_messages[message["message_id"]] = message
        bot.add_update("message", message)
        return copy.deepcopy(message)

    def _set_blocked(self, bot: Bot, user_id: int, *, blocked: bool) -> None:
        chat = self._open_chat(bot, user_id)
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        # a private chat reports (un)blocking as a my_chat_member update (TGS Update)
        member = {"status": "member", "user": bot.user_json()}
        kicked = {"status": "kicked", "user": bot.user_json(), "until_date": 0}
        bot.add_update(
            "my_chat_member",
            {
                "chat": chat.customer.chat_json(),
                "from": chat.customer.user_json(),
                "date": int(time.time()),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            },
        )

    def _store_file(self, bot: Bot, data: bytes, path: str, mime_type: str) -> StoredFile:
        stored = StoredFile(
            file_id=_opaque_id(self._rng, 24),
            file_unique_id=_opaque_id(self._rng, 9),
            file_path=path,
            data=data,
            mime_type=mime_type,
        )
        bot.files[stored.file_id] = stored
        return stored


def _business_update(bot: Bot, chat: Chat, kind: str, payload: JSON) -> None:
    """What happens in a business chat reaches the bot while the connection is on."""
    if chat.business is not None and chat.business.is_enabled:
        bot.add_update(kind, payload)


def _with_caption(content: JSON, caption: str | None) -> JSON:
    return {**content, "caption": caption} if caption else content


def _opaque_id(rng: random.Random, size: int) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(size)).decode().rstrip("=")
