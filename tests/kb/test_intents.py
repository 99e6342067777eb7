"""What a message says besides a question: a request for a person, "it did not help", anger."""

from __future__ import annotations

import pytest

from kb.intents import asks_for_human, is_strongly_negative, says_not_helped


@pytest.mark.parametrize(
    "text",
    [
        "оператор",
        "Оператор, пожалуйста!",
        "позовите человека",
        "Позовите, пожалуйста, живого человека",
        "живой человек",
        "соедините с оператором",
        "переключите на специалиста",
        "хочу поговорить с сотрудником",
        "нужен оператор",
        "с ботом не хочу",
        "Оператор срочно",
        "talk to a human",
        "agent please",
        "Agent, please!",
        "can I speak with a real person?",
        "I want a human",
        "connect me to an agent",
        "human",
        "let me talk to someone",
        "representative please",
    ],
)
def test_a_request_for_a_person_is_recognised(text: str) -> None:
    assert asks_for_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "какой у вас оператор связи?",
        "сменил мобильного оператора, сохранится ли номер",
        "сколько человек может подключиться к wifi",
        "тариф на двух человек",
        "как работает ваш бот",
        "what is my user agent string",
        "I need someone to fix my router",
        "how do I become an agent",
        "the price per person",
        "my router is broken",
        "",
    ],
)
def test_a_question_that_only_mentions_people_is_not_a_request(text: str) -> None:
    assert not asks_for_human(text)


@pytest.mark.parametrize(
    "text", ["не помогло", "Это не помогло", "ничего не помогает", "it didn't help", "not helpful"]
)
def test_it_did_not_help_is_recognised(text: str) -> None:
    assert says_not_helped(text)


@pytest.mark.parametrize(
    "text", ["интернет не работает", "спасибо, помогло", "thanks, that helped", "help me please"]
)
def test_a_complaint_about_the_service_is_not_feedback_on_the_answer(text: str) -> None:
    assert not says_not_helped(text)


@pytest.mark.parametrize(
    "text",
    [
        "Ужасный сервис, верните деньги!!!",
        "вы мошенники",
        "ТРЕТИЙ ДЕНЬ НЕТ ИНТЕРНЕТА, УЖАС",
        "this is the worst service, I hate it",
        "what a fucking joke",
        "I will sue you",
    ],
)
def test_a_strongly_negative_message_is_recognised(text: str) -> None:
    assert is_strongly_negative(text)


@pytest.mark.parametrize(
    "text",
    [
        "интернет медленный, что делать?",
        "the speed is terrible",
        "НЕ РАБОТАЕТ РОУТЕР",
        "I hate to bother you, how do I pay?",
    ],
)
def test_a_plain_complaint_is_not_strongly_negative(text: str) -> None:
    assert not is_strongly_negative(text)
