"""Logging for every role: plain lines for a person, or one JSON object per line for a log
collector (`log_format = "json"`). A record made while one conversation is being handled carries
its id, so that its whole story can be found."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator

from pythonjsonlogger.json import JsonFormatter

_conversation = contextvars.ContextVar[int | None]("conversation_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ConversationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conversation_id = _conversation.get()
        return True


@contextlib.contextmanager
def about_conversation(conversation_id: int) -> Iterator[None]:
    token = _conversation.set(conversation_id)
    try:
        yield
    finally:
        _conversation.reset(token)


def configure(level: str, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConversationFilter())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(conversation_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
