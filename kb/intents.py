"""What a customer's message says besides a question, in Russian and English: a request for a
person, "that did not help", strong anger. Each of these hands the conversation to an agent, so
the patterns are narrow: a question that merely mentions an operator or an agent must not match.
"""

from __future__ import annotations

import re

# Who the customer may ask for; "оператор" alone is also a telecom carrier ("оператор связи").
_RU_PERSON = r"(?:оператор\w*|человек\w*|сотрудник\w*|специалист\w*|менеджер\w*|консультант\w*)"
_EN_PERSON = (
    r"(?:a\s+|an\s+|the\s+|some\s+|real\s+|live\s+|actual\s+)*"
    r"(?:human|person|agent|operator|representative|rep|someone|somebody|people|manager)s?\b"
)

# Every pattern reads text `_plain` has lowercased already: matching without IGNORECASE, which
# folds each character again, takes about half the time (measured: 12 -> 7.5 us a message).
_HUMAN_REQUEST = [
    re.compile(pattern)
    for pattern in (
        # the whole message is the word: "Оператор!", "operator please", "агент"
        r"^\W*(?:оператор\w*|человек\w*|агент\w*|специалист\w*)"
        r"(?:\W+(?:пожалуйста|срочно|плиз|нужен|нужна))?\W*$",
        r"^\W*(?:human|agent|operator|representative|person)(?:\W+(?:please|pls|now))?\W*$",
        # a verb of calling or connecting followed by a person
        r"\b(?:позов\w*|зов\w*|пригласи\w*|дайте|дай|соедин\w*|переключ\w*|перевед\w*|свяж\w*)"
        r"(?:\s+\S+){0,3}?\s+(?:с\s+)?" + _RU_PERSON,
        r"\b(?:хочу|хотел\w*|можно|нужно|надо|могу)\s+(?:\S+\s+){0,2}?"
        r"(?:поговорить|говорить|пообщаться|связаться|общаться|написать)\s+с\s+" + _RU_PERSON,
        r"\b(?:нужен|нужна|требуется)\s+(?:живой\s+)?(?:оператор|человек|сотрудник|специалист)\b",
        r"\bжив\w+\s+(?:человек\w*|оператор\w*|сотрудник\w*|люд\w*)",
        r"\b(?:не\s+)?(?:с\s+)?бот(?:ом)?\s+(?:не\s+)?(?:хочу|буду)\b",
        r"\b(?:talk|speak|chat|get\s+through)\s+(?:to|with)\s+" + _EN_PERSON,
        r"\b(?:connect|transfer|put)\s+me\s+(?:through\s+)?(?:to|with)\s+" + _EN_PERSON,
        r"\b(?:want|need|would\s+like|'d\s+like)\s+(?:a\s+|an\s+|the\s+|real\s+|live\s+)*"
        r"(?:human|person|agent|operator|representative)s?\b",
        r"\b(?:agent|human|operator|representative|person)\s+please\b",
        r"\b(?:real|live|actual)\s+(?:human|person|agent|people)\b",
        r"\bnot\s+(?:a|the|this)\s+bot\b",
    )
]

# Not a request for a person, though the words are there.
_NOT_A_REQUEST = re.compile(
    r"оператор\w*\s+связ\w*|мобильн\w+\s+оператор\w*|сотов\w+\s+оператор\w*"
    r"|сколько\s+человек|на\s+(?:\d+|одного|двух|трех|четырех)\s+человек"
    r"|user[\s-]+agent|travel\s+agent|estate\s+agent|per\s+person|people\s+in\s+my",
)

_NOT_HELPED = re.compile(
    r"\bне\s+(?:помогл?[оаи]?|помогает|помогло)\b|\bбесполезн\w*"
    r"|\b(?:that|this|it)?\s*(?:did\s*n[o']t|does\s*n[o']t|didnt|doesnt)\s+(?:help|work)\b"
    r"|\bnot\s+(?:helpful|what\s+i\s+asked)\b|\bno\s+help\b|\buseless\b",
)

# Words of strong anger or abuse score 2, plain negative words 1; a message scoring 2 or more
# (or shouting with a negative word) is strongly negative.
_ABUSE = re.compile(
    r"\b(?:бля\w*|хуй\w*|хуе\w*|пизд\w*|еба\w*|ёба\w*|уеб\w*|сук[аи]\b|мудак\w*|идиот\w*|дебил\w*"
    r"|мошенник\w*|развод\w*\s+на\s+деньги|обман\w*|ворюг\w*|суд(?:ом|ебн\w*)?\b|прокуратур\w*"
    r"|роспотребнадзор\w*|fuck\w*|shit\w*|bullshit|idiot\w*|moron\w*|scam\w*|fraud\w*|sue\b"
    r"|lawyer\w*|thie(?:f|ves))",
)
_NEGATIVE = re.compile(
    r"\b(?:ужас\w*|отвратительн\w*|кошмар\w*|безобраз\w*|позор\w*|бесит|достал[иа]?\b"
    r"|надоел\w*|худш\w*|отстой\w*|хамств\w*|издевательств\w*|возмут\w*|возмущ\w*|невыносим\w*"
    r"|terrible|awful|horrible|worst|hate|disgusting|pathetic|ridiculous|outrageous|unacceptable"
    r"|furious|angry|sick\s+of|fed\s+up|rubbish|garbage|incompetent)\b",
)


def _plain(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


def asks_for_human(text: str) -> bool:
    plain = _plain(text)
    if not plain:
        return False
    cleaned = _NOT_A_REQUEST.sub(" ", plain)
    return any(pattern.search(cleaned) for pattern in _HUMAN_REQUEST)


def says_not_helped(text: str) -> bool:
    """ "It did not help", said in words rather than with the button."""
    return bool(_NOT_HELPED.search(_plain(text)))


def is_strongly_negative(text: str) -> bool:
    plain = _plain(text)
    score = 2 * len(_ABUSE.findall(plain)) + len(_NEGATIVE.findall(plain))
    if score != 1:
        return score >= 2
    # one negative word: strong only if shouted (counted only here: a pass over every letter)
    if "!!!" in text:
        return True
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) > 0.7
