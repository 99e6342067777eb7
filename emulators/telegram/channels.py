"""A brand's channel with its linked discussion group, which the bot is a member (an admin) of:
each channel post is forwarded automatically into the group, and the users' comments on it are
replies there, in the thread of that forward (docs/networks.md 1.8). The bot's messages to the
group go into a thread by replying to one of its messages."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from emulators.telegram.answers import ApiError
from emulators.telegram.params import Params, arg_bool, arg_int, arg_json
from emulators.telegram.state import JSON, Bot, Customer

# The service account Telegram names as the sender of a post's automatic forward.
TELEGRAM_SERVICE_USER: JSON = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
# TBA's words for a reply target that is not in the chat, and an unknown thread
REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
THREAD_NOT_FOUND = "Bad Request: message thread not found"


@dataclass(slots=True)
class DiscussionGroup:
    """A supergroup linked to a channel: every message in it, by id, and each message's thread
    (the message id of the post's forward it hangs under)."""

    id: int
    title: str
    channel_id: int
    channel_title: str
    channel_username: str | None
    last_message_id: int = 0
    last_post_id: int = 0
    messages: dict[int, JSON] = field(default_factory=dict)
    threads: dict[int, int] = field(default_factory=dict)

    def chat_json(self) -> JSON:
        return {"id": self.id, "type": "supergroup", "title": self.title}

    def channel_json(self) -> JSON:
        chat: JSON = {"id": self.channel_id, "type": "channel", "title": self.channel_title}
        if self.channel_username:
            chat["username"] = self.channel_username
        return chat

    def add(self, body: JSON, thread: int | None, reply_to: int | None) -> JSON:
        """A new message in the group, with its thread and the message it replies to."""
        self.last_message_id += 1
        message: JSON = {"message_id": self.last_message_id, "chat": self.chat_json(), **body}
        if thread is not None:
            message["message_thread_id"] = thread
            self.threads[message["message_id"]] = thread
        if reply_to is not None:
            # a reply carries the message it answers, without that one's own reply
            parent = {k: v for k, v in self.messages[reply_to].items() if k != "reply_to_message"}
            message["reply_to_message"] = copy.deepcopy(parent)
        self.messages[message["message_id"]] = message
        return message


def post(bot: Bot, group: DiscussionGroup, text: str) -> JSON:
    """The channel publishes `text`; its automatic forward lands in the group for the bot."""
    group.last_post_id += 1
    now = int(time.time())
    forward = group.add(
        {
            "from": TELEGRAM_SERVICE_USER,
            "sender_chat": group.channel_json(),
            "date": now,
            "text": text,
            "is_automatic_forward": True,
            "forward_origin": {
                "type": "channel",
                "chat": group.channel_json(),
                "message_id": group.last_post_id,
                "date": now,
            },
        },
        thread=None,
        reply_to=None,
    )
    bot.add_update("message", forward)
    return copy.deepcopy(forward)


def comment(
    bot: Bot, group: DiscussionGroup, author: Customer, post_id: int, text: str, reply_to: int
) -> JSON:
    """`author` comments on the post whose forward is `post_id`, answering `reply_to` (the
    forward itself, or another comment in its thread)."""
    forward = group.messages.get(post_id)
    if forward is None or not forward.get("is_automatic_forward"):
        raise ValueError(f"no channel post {post_id} in the discussion group")
    if group.threads.get(reply_to, reply_to) != post_id:
        raise ValueError(f"message {reply_to} is not under post {post_id}")
    body = {"from": author.user_json(), "date": int(time.time()), "text": text}
    message = group.add(body, thread=post_id, reply_to=reply_to)
    bot.add_update("message", message)
    return copy.deepcopy(message)


def edit_comment(bot: Bot, group: DiscussionGroup, message_id: int, text: str) -> JSON:
    message = group.messages.get(message_id)
    if message is None or message.get("is_automatic_forward"):
        raise ValueError(f"no comment {message_id} in the discussion group")
    message["text"] = text
    message["edit_date"] = int(time.time())
    bot.add_update("edited_message", message)
    return copy.deepcopy(message)


def send_to_group(bot: Bot, group: DiscussionGroup, text: str, params: Params) -> JSON:
    """sendMessage into the group: a reply (reply_parameters, or the older reply_to_message_id)
    lands in its target's thread; a target not in the group is refused unless the caller allows
    sending without it; a message_thread_id must name a thread of the group."""
    thread = arg_int(params, "message_thread_id", 0)
    if thread and thread not in group.messages:
        raise ApiError(400, THREAD_NOT_FOUND)
    reply = arg_json(params, "reply_parameters", "Bad Request: can't parse reply parameters JSON")
    target, allow_without = arg_int(params, "reply_to_message_id", 0), False
    if isinstance(reply, dict):
        target = int(reply.get("message_id") or 0)
        allow_without = bool(reply.get("allow_sending_without_reply"))
    allow_without = allow_without or arg_bool(params, "allow_sending_without_reply")
    if target and target not in group.messages:
        if not allow_without:
            raise ApiError(400, REPLY_NOT_FOUND)
        target = 0
    if target:
        forward = group.messages[target].get("is_automatic_forward")
        thread = group.threads.get(target) or (target if forward else 0)
    body = {"from": bot.user_json(), "date": int(time.time()), "text": text}
    # the bot is not sent its own messages, so no update: only the answer
    return copy.deepcopy(group.add(body, thread=thread or None, reply_to=target or None))
