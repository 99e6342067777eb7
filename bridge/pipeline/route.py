"""Routing: for each stored customer message, answer it, hand the conversation off, or leave it
with the agent who has it. Works on in-memory rows; the caller writes the outcome back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bridge.domain import AuthorKind, ConversationState, HandoffReason
from bridge.language import guess_language
from bridge.pipeline.ingest import ConversationRow, Stored
from bridge.pipeline.responder import Question, Responder
from bridge.settings import Settings


@dataclass(frozen=True, slots=True)
class Reply:
    """An outgoing message decided by routing, not yet stored."""

    conversation: ConversationRow
    cause: Stored
    author_kind: AuthorKind
    text: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class StateChange:
    conversation_id: int
    state: ConversationState
    reason: str | None


class Router:
    def __init__(self, settings: Settings, responder: Responder | None) -> None:
        self.settings = settings
        self.responder = responder

    async def route(
        self, stored: list[Stored], now: dt.datetime
    ) -> tuple[list[Reply], list[StateChange]]:
        """In arrival order, so a conversation's state carries from one message to the next."""
        replies: list[Reply] = []
        changes: list[StateChange] = []
        for item in stored:
            conversation = item.conversation
            conversation.changed = True
            conversation.last_message_at = now
            language = guess_language(item.inbound.text, item.inbound.language)
            if language:
                conversation.language = language
            if conversation.state is ConversationState.RESOLVED:
                conversation.state = ConversationState.BOT
                conversation.resolved_at = None
                conversation.handoff_reason = None
                changes.append(StateChange(conversation.id, ConversationState.BOT, "reopened"))
            if conversation.state is not ConversationState.BOT:
                continue  # an agent has it or will take it: the inbox shows the new message
            reply = await self._answer(item, conversation, now)
            if reply is None:
                reason = (
                    HandoffReason.NO_RESPONDER
                    if self.responder is None
                    else HandoffReason.LOW_CONFIDENCE
                )
                reply = self._hand_off(item, conversation, reason, now)
                changes.append(StateChange(conversation.id, conversation.state, reason))
            replies.append(reply)
        return replies, changes

    async def _answer(
        self, item: Stored, conversation: ConversationRow, now: dt.datetime
    ) -> Reply | None:
        if self.responder is None:
            return None
        answer = await self.responder.answer(
            Question(
                conversation.id, conversation.network, item.inbound.text, conversation.language
            )
        )
        if answer is None or answer.confidence < self.settings.auto_answer_threshold:
            return None
        if conversation.first_response_at is None:
            conversation.first_response_at = now
        return Reply(conversation, item, AuthorKind.BOT, answer.text, f"answer:{item.message_id}")

    def _hand_off(
        self, item: Stored, conversation: ConversationRow, reason: HandoffReason, now: dt.datetime
    ) -> Reply:
        conversation.state = ConversationState.WAITING
        conversation.handoff_reason = reason.value
        conversation.handed_off_at = now
        template = (
            self.settings.handoff_ack_ru
            if conversation.language == "ru"
            else self.settings.handoff_ack_en
        )
        text = template.format(minutes=self.settings.usual_wait_minutes)
        return Reply(conversation, item, AuthorKind.SYSTEM, text, f"handoff-ack:{item.message_id}")
