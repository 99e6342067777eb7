"""A local emulator of the Telegram Bot API HTTP interface, faithful where our product relies on it.

Serves `/bot{token}/{method}` and `/file/bot{token}/{file_path}` like api.telegram.org, so aiogram
(`TelegramAPIServer.from_base(url)`) and python-telegram-bot (`base_url=url + "/bot"`) talk to it
unchanged. Facts and their sources: docs/networks.md section 1. Where the real server's wording
is not published, the texts follow tdlib/telegram-bot-api (TBA).

Deliberate differences from the real server, all harmless for a local emulator:
* webhook URLs may be plain http on any port (test receivers are local); no certificate checks;
* webhook pushes are sequential (as if max_connections were 1), which keeps every chat in order;
* the short-poll throttle (repeated getUpdates with one offset held to 3 s) is not emulated;
* parse_mode is only parsed far enough to know the visible text; no entities are produced.

A test (or, over `/_emulator/...`, another process) plays the customers: writes text, photos and
documents as a user, edits them, presses inline buttons, blocks the bot, and reads what the bot
sent with the emulator's own receive time of each send (the delivery benchmark's evidence). A
brand connects its Telegram Business account to a bot, and its customers write, edit and delete
in that account's chats, which the bot answers through the connection (docs/networks.md 1.7).
A brand's channel posts into its linked discussion group, where users comment and the bot
replies in a post's thread (1.8).
`faults` injects 429s, 5xx answers, slow answers and dropped connections on demand.

The parts: `emulator` (TelegramEmulator, the HTTP server), `state` (bots, chats, messages,
updates), `customer_side` and `customer_routes` (playing the customers), `methods` (the Bot API
methods) with `params` (their parameters) and `answers` (their answers and errors), `webhooks`
(pushing updates to a bot's webhook), `channels` (the channel and its discussion group).

Run standalone: `python -m emulators.telegram --port 8081 --token 123:ABC`.
"""

from emulators.telegram.answers import ApiError
from emulators.telegram.emulator import DEFAULT_TOKEN, TelegramEmulator
from emulators.telegram.methods import MAX_DOWNLOAD_SIZE
from emulators.telegram.state import BotMessage, CallbackQueryRecord, Customer, MessageEdit
from emulators.telegram.webhooks import SECRET_HEADER

__all__ = [
    "DEFAULT_TOKEN",
    "MAX_DOWNLOAD_SIZE",
    "SECRET_HEADER",
    "ApiError",
    "BotMessage",
    "CallbackQueryRecord",
    "Customer",
    "MessageEdit",
    "TelegramEmulator",
]
