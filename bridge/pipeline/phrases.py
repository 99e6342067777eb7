"""What the bot itself says, in Russian and English (the handoff acknowledgement is a setting;
the request for a rating is sent by the inbox, so it is in `bridge/inbox/ratings.py`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from bridge.domain import Button

FEEDBACK_YES = "helped"
FEEDBACK_NO = "not_helped"
_FEEDBACK_PREFIX = "fb"

_TEXTS = {
    "en": {
        "did_it_help": "Did this answer help?",
        "yes": "Yes, thanks",
        "no": "No, I need a person",
        "glad": "Glad to help! Write any time.",
        "rephrase": (
            "I'm not sure I understood. Could you put it another way? "
            "Or write «operator» and a person will answer."
        ),
        "rated": "Thank you for your rating!",
        "add_comment": "Anything to add? Just write it here — or ignore this.",
        "comment_noted": "Thank you, we have noted it. If you need anything else, just write.",
    },
    "ru": {
        "did_it_help": "Этот ответ помог?",
        "yes": "Да, спасибо",
        "no": "Нет, нужен человек",
        "glad": "Рады помочь! Пишите в любое время.",
        "rephrase": (
            "Не уверен, что правильно понял. Можете сформулировать иначе? "
            "Или напишите «оператор», и вам ответит человек."
        ),
        "rated": "Спасибо за оценку!",
        "add_comment": "Хотите что-то добавить? Просто напишите здесь — или пропустите.",
        "comment_noted": "Спасибо, мы это учтём. Если нужно что-то ещё, просто напишите.",
    },
}


def text(key: str, language: str | None) -> str:
    return _TEXTS["ru" if language == "ru" else "en"][key]


def feedback_buttons(question_message_id: int, language: str | None) -> list[Button]:
    """ "Did this help?" buttons; their data names the question the answer was for."""
    return [
        Button(
            label=text("yes", language),
            data=f"{_FEEDBACK_PREFIX}:{FEEDBACK_YES}:{question_message_id}",
        ),
        Button(
            label=text("no", language),
            data=f"{_FEEDBACK_PREFIX}:{FEEDBACK_NO}:{question_message_id}",
        ),
    ]


def parse_feedback(button_data: str | None) -> tuple[str, int] | None:
    """(feedback, question message id) from a feedback button's data, else None."""
    if not button_data:
        return None
    prefix, _, rest = button_data.partition(":")
    feedback, _, question = rest.partition(":")
    if prefix != _FEEDBACK_PREFIX or feedback not in (FEEDBACK_YES, FEEDBACK_NO):
        return None
    if not question.isdigit():
        return None
    return feedback, int(question)


_OPENING = {
    "en": "EEEE d MMMM 'at' HH:mm (zzzz)",
    "ru": "EEEE, d MMMM, 'в' HH:mm (zzzz)",
}


def opening(opens: dt.datetime, zone: ZoneInfo, language: str | None) -> str:
    """When a closed team opens, as a customer reads it: "Monday 14 December at 09:00 (Moscow
    Standard Time)"; in the team's own time zone, which is mostly the customer's."""
    language = language if language in _OPENING else "en"
    return format_datetime(opens, _OPENING[language], tzinfo=zone, locale=language)
