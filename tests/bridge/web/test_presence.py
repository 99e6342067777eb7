"""What a page's presence notes become: who views a conversation, types in it, leaves it. (Two
agents' pages hearing each other over the live socket: test_web_inbox.py.)"""

from __future__ import annotations

import itertools

from bridge.domain import EventKind
from bridge.inbox.agents import AgentInfo, Role
from bridge.web.presence import Presence

ANNA = AgentInfo(7, "anna", "Anna", Role.AGENT, "ru", True)


def a_second_apart() -> Presence:
    return Presence(ANNA, clock=itertools.count().__next__)


def test_a_page_that_opens_a_conversation_says_who_views_it() -> None:
    [event] = a_second_apart().note('{"viewing": 12, "hello": true}')

    assert event.kind is EventKind.AGENT_PRESENCE
    assert event.conversation_id == 12
    assert event.data == {"agent_id": 7, "name": "Anna", "typing": False, "hello": True}


def test_a_page_that_moves_to_another_conversation_leaves_the_first() -> None:
    presence = a_second_apart()
    presence.note('{"viewing": 12}')

    left, viewing = presence.note('{"viewing": 13}')

    assert (left.conversation_id, left.data["left"]) == (12, True)
    assert viewing.conversation_id == 13


def test_a_closed_page_leaves_its_conversation() -> None:
    presence = a_second_apart()
    presence.note('{"viewing": 12}')

    [left] = presence.left()

    assert (left.conversation_id, left.data["left"]) == (12, True)


def test_a_page_that_showed_no_conversation_leaves_none() -> None:
    assert a_second_apart().left() == []


def test_a_malformed_note_is_dropped() -> None:
    presence = a_second_apart()

    for text in ("not json", '{"viewing": "x"}', '{"viewing": -1}', '{"viewing": 1, "as": 2}'):
        assert presence.note(text) == []


def test_a_page_may_say_a_few_things_at_once() -> None:
    presence = Presence(ANNA, clock=lambda: 100.0)
    presence.note('{"viewing": 12, "hello": true}')

    assert presence.note('{"viewing": 12, "typing": true}') != []


def test_notes_sent_faster_than_a_page_would_are_dropped() -> None:
    presence = Presence(ANNA, clock=lambda: 100.0)
    for _ in range(4):
        presence.note('{"viewing": 12}')

    assert presence.note('{"viewing": 12, "typing": true}') == []
