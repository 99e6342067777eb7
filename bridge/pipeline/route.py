"""Routing: for each stored customer message, answer it, hand the conversation off, or leave it
with the agent who has it. Works on in-memory rows; the caller writes the outcome back.

The decision, in order: a rating button (after an agent resolved the conversation) and the
comment that may follow it; a "did this help?" button; an explicit request for a person; "that did
not help" after an answer; a strongly negative message; then the responder's best answer, sent
when its confidence reaches the threshold that applies (unless its article is never-auto). An
unconfident question just under the threshold is met with "put it another way" once; the second
one in a row, or one further below, goes to an agent. In shadow mode the bot only suggests.
A public comment goes to agents unless an admin lets the bot answer in public on its network;
the listening rules route each one that has their words (a new one, or one edited to have them),
and mark it urgent; a negative one is raised a step further.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bridge.domain import (
    AuthorKind,
    Button,
    ConversationState,
    DecisionOutcome,
    HandoffReason,
    InboundMessage,
    Network,
)
from bridge.pipeline import phrases
from bridge.pipeline.ingest import ConversationRow, Stored
from bridge.pipeline.responder import Answer, Question, Responder
from bridge.pipeline.team_routing import LiveRules
from bridge.pipeline.thresholds import LiveThresholds
from bridge.settings import Settings
from bridge.store.ratings import RatingAsk, is_rating_data, parse_rating
from kb.intents import asks_for_human, is_strongly_negative, says_not_helped
from kb.language import detect_language

log = logging.getLogger(__name__)

_WITH_PEOPLE = (ConversationState.WAITING, ConversationState.ASSIGNED)
# After a rating, the customer's next message this soon is its comment: time to type a sentence
# on a phone, short enough that a new question later reopens the conversation as usual.
COMMENT_WINDOW = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Reply:
    """An outgoing message decided by routing, not yet stored."""

    conversation: ConversationRow
    cause: Stored
    author_kind: AuthorKind
    text: str
    idempotency_key: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True)
class StateChange:
    conversation_id: int
    state: ConversationState
    reason: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    """What was done with one customer message (a row of the `decisions` table)."""

    message_id: int
    conversation_id: int
    network: Network
    outcome: DecisionOutcome
    reason: str | None = None
    article_id: str | None = None
    confidence: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Feedback:
    """A customer's "did this help?" for the bot's answer to `question_message_id`."""

    conversation_id: int
    question_message_id: int
    feedback: str


@dataclass(frozen=True, slots=True)
class LabelAdded:
    """A label a routing rule put on a conversation handed to people."""

    conversation_id: int
    label_id: int


@dataclass(slots=True)
class Routed:
    replies: list[Reply] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    labels: list[LabelAdded] = field(default_factory=list)


class Router:
    def __init__(
        self,
        settings: Settings,
        responder: Responder | None,
        thresholds: LiveThresholds | None = None,
        rules: LiveRules | None = None,
    ) -> None:
        self.settings = settings
        self.responder = responder
        self.thresholds = thresholds or LiveThresholds(None, settings)
        self.rules = rules or LiveRules(None, settings.kb_refresh_seconds)

    async def route(
        self,
        stored: list[Stored],
        now: dt.datetime,
        asks: Mapping[int, Sequence[RatingAsk]] | None = None,
    ) -> Routed:
        """In arrival order, so a conversation's state carries from one message to the next.
        `asks`: the requests for a rating sent in the conversations, by conversation id, changed
        here by presses and comments for the caller to write back."""
        routed = Routed()
        asks = asks or {}
        if stored:
            await self.thresholds.refresh()
            await self.rules.refresh()
        for item in stored:
            conversation = item.conversation
            conversation.changed = True
            conversation.last_message_at = now
            # a button press carries our own data, not the customer's words
            text = item.inbound.text if item.inbound.kind != "button" else ""
            language = detect_language(text, item.inbound.language)
            if language:
                conversation.language = language
            if item.inbound.kind == "button" and is_rating_data(item.inbound.button_data):
                self._rate(item, asks.get(conversation.id, ()), now, routed)
                continue
            feedback = phrases.parse_feedback(item.inbound.button_data)
            if item.inbound.kind == "button" and feedback is not None:
                self._feedback(item, *feedback, now, routed)
                continue
            if conversation.state is ConversationState.RESOLVED:
                ask = awaiting_comment(asks.get(conversation.id, ()), now)
                if ask is not None and is_comment(item.inbound):
                    self._comment(item, ask, now, routed)
                    continue
                self._set_state(conversation, ConversationState.BOT, "reopened", routed)
                conversation.resolved_at = None
                conversation.handoff_reason = None
                conversation.priority = 0  # urgency is the open thread's, not its past's
            if conversation.state is ConversationState.BOT:
                if conversation.public and not self.settings.answers_in_public(
                    conversation.network
                ):
                    self._hand_off(item, HandoffReason.PUBLIC, now, routed)
                else:
                    await self._decide(item, now, routed)
            elif self.settings.in_shadow(conversation.network):
                await self._suggest(item, routed)
            # otherwise an agent has it or will take it: the inbox shows the new message
            if conversation.public and item.inbound.kind == "message" and text:
                self._listen(item, text, routed)
            if conversation.state in _WITH_PEOPLE and conversation.awaiting_since is None:
                conversation.awaiting_since = now  # the SLA clock runs until an agent answers
        return routed

    async def listen_to_edits(self, edited: Sequence[Stored], routed: Routed) -> None:
        """Edited public comments, heard by the listening rules as new ones are: an edit may add
        their words. A resolved thread's urgency stays as it is (it is the open thread's)."""
        if edited:
            await self.rules.refresh()
        for item in edited:
            conversation = item.conversation
            if conversation.state is not ConversationState.RESOLVED and item.inbound.text:
                conversation.changed = True
                self._listen(item, item.inbound.text, routed)

    def _listen(self, item: Stored, text: str, routed: Routed) -> None:
        """A public comment: the listening rules whose words it has route it and may make it
        urgent; a strongly negative one is one step more urgent. Urgency only grows until the
        thread is resolved."""
        conversation = item.conversation
        routing = self.rules.listen(
            conversation.network, conversation.language, conversation.handoff_reason, text
        )
        if routing.team_id is not None:
            conversation.team_id = routing.team_id
        routed.labels += [LabelAdded(conversation.id, label) for label in routing.label_ids]
        priority = int(routing.urgent) + int(is_strongly_negative(text))
        conversation.priority = max(conversation.priority, priority)

    async def _decide(self, item: Stored, now: dt.datetime, routed: Routed) -> None:
        conversation = item.conversation
        text = item.inbound.text.strip()
        if asks_for_human(text):
            return self._hand_off(item, HandoffReason.ASKED_FOR_HUMAN, now, routed)
        if conversation.answered_message_id is not None and says_not_helped(text):
            routed.feedback.append(
                Feedback(conversation.id, conversation.answered_message_id, phrases.FEEDBACK_NO)
            )
            return self._hand_off(item, HandoffReason.NOT_HELPFUL, now, routed, record=False)
        if is_strongly_negative(text):
            return self._hand_off(item, HandoffReason.NEGATIVE_TONE, now, routed)
        answer = await self._ask(item) if text else None
        if answer is None:
            # no responder, or one with nothing to answer from; a message with no text (a photo)
            # is beyond the bot either way
            reason = (
                HandoffReason.NO_RESPONDER
                if self.responder is None or text
                else HandoffReason.LOW_CONFIDENCE
            )
            return self._hand_off(item, reason, now, routed)
        threshold = self.thresholds.for_answer(conversation.network, answer.threshold)
        if self.settings.in_shadow(conversation.network):
            routed.decisions.append(_decision(item, DecisionOutcome.SUGGESTED, answer, threshold))
            return self._hand_off(item, HandoffReason.SHADOW_MODE, now, routed, record=False)
        if answer.confidence >= threshold:
            if answer.never_auto:
                return self._hand_off(
                    item, HandoffReason.NEVER_AUTO, now, routed, answer, threshold
                )
            return self._answer(item, answer, threshold, now, routed)
        if conversation.misses >= 1:
            return self._hand_off(
                item, HandoffReason.REPEATED_MISSES, now, routed, answer, threshold
            )
        if answer.confidence >= threshold - self.settings.rephrase_margin:
            conversation.misses += 1
            routed.decisions.append(_decision(item, DecisionOutcome.REPHRASE, answer, threshold))
            routed.replies.append(
                self._bot_reply(item, phrases.text("rephrase", conversation.language), "rephrase")
            )
            return None
        return self._hand_off(item, HandoffReason.LOW_CONFIDENCE, now, routed, answer, threshold)

    async def _ask(self, item: Stored) -> Answer | None:
        if self.responder is None:
            return None
        conversation = item.conversation
        return await self.responder.answer(
            Question(
                conversation.id, conversation.network, item.inbound.text, conversation.language
            )
        )

    def _answer(
        self, item: Stored, answer: Answer, threshold: float, now: dt.datetime, routed: Routed
    ) -> None:
        conversation = item.conversation
        conversation.misses = 0
        conversation.answered_message_id = item.message_id
        if conversation.first_response_at is None:
            conversation.first_response_at = now
        routed.decisions.append(_decision(item, DecisionOutcome.ANSWERED, answer, threshold))
        if conversation.public:  # a comment carries no buttons to say whether it helped
            routed.replies.append(self._bot_reply(item, answer.text, "answer"))
            return
        question = phrases.text("did_it_help", conversation.language)
        routed.replies.append(
            self._bot_reply(
                item,
                f"{answer.text}\n\n{question}",
                "answer",
                phrases.feedback_buttons(item.message_id, conversation.language),
            )
        )

    async def _suggest(self, item: Stored, routed: Routed) -> None:
        """Shadow mode: what the bot would have answered, for the agent to accept or reject."""
        answer = await self._ask(item) if item.inbound.text.strip() else None
        if answer is not None:
            threshold = self.thresholds.for_answer(item.conversation.network, answer.threshold)
            routed.decisions.append(_decision(item, DecisionOutcome.SUGGESTED, answer, threshold))

    def _feedback(
        self, item: Stored, feedback: str, question_id: int, now: dt.datetime, routed: Routed
    ) -> None:
        conversation = item.conversation
        routed.feedback.append(Feedback(conversation.id, question_id, feedback))
        if conversation.answered_message_id == question_id:
            conversation.answered_message_id = None
        if conversation.state is not ConversationState.BOT:
            return  # an agent has the conversation already: the verdict is only evidence
        if feedback == phrases.FEEDBACK_NO:
            # the press is evidence on the answer, not a question of its own
            self._hand_off(item, HandoffReason.NOT_HELPFUL, now, routed, record=False)
            return
        routed.replies.append(
            self._bot_reply(item, phrases.text("glad", conversation.language), "glad")
        )
        # answered by the bot and confirmed by the customer: self-service, closed
        self._set_state(conversation, ConversationState.RESOLVED, "helped", routed)
        conversation.resolved_at = now

    def _rate(
        self, item: Stored, asks: Sequence[RatingAsk], now: dt.datetime, routed: Routed
    ) -> None:
        """A rating button: the score goes on its request (a second press replaces it). Data
        that names no request of this conversation (forged, foreign, malformed) changes nothing."""
        conversation = item.conversation
        press = parse_rating(item.inbound.button_data)
        requested = {a.request_message_id: a for a in asks}
        ask = requested.get(press.request_message_id) if press is not None else None
        if press is None or ask is None:
            log.info("a rating press naming no request of conversation %d ignored", conversation.id)
            return
        ask.rating, ask.rated_at, ask.changed = press.score, now, True
        text = phrases.text("rated", conversation.language)
        if conversation.state is ConversationState.RESOLVED and ask.comment is None:
            text = f"{text} {phrases.text('add_comment', conversation.language)}"
        routed.replies.append(_system_reply(item, text, "rated"))

    def _comment(self, item: Stored, ask: RatingAsk, now: dt.datetime, routed: Routed) -> None:
        """The rating's comment: kept with it; the conversation stays resolved."""
        ask.comment, ask.commented_at, ask.changed = item.inbound.text.strip(), now, True
        text = phrases.text("comment_noted", item.conversation.language)
        routed.replies.append(_system_reply(item, text, "noted"))

    def _hand_off(
        self,
        item: Stored,
        reason: HandoffReason,
        now: dt.datetime,
        routed: Routed,
        answer: Answer | None = None,
        threshold: float | None = None,
        *,
        record: bool = True,
    ) -> None:
        conversation = item.conversation
        conversation.handoff_reason = reason.value
        conversation.handed_off_at = now
        conversation.misses = 0
        conversation.answered_message_id = None
        self._set_state(conversation, ConversationState.WAITING, reason.value, routed)
        routing = self.rules.route(
            conversation.network, conversation.language, answer.tags if answer else (), reason
        )
        if routing.team_id is not None:
            conversation.team_id = routing.team_id
        routed.labels += [LabelAdded(conversation.id, label) for label in routing.label_ids]
        if record:
            routed.decisions.append(
                _decision(item, DecisionOutcome.HANDOFF, answer, threshold, reason=reason.value)
            )
        if conversation.public:
            return  # "an agent will answer you soon" is for one customer, not for everyone
        text = self._handoff_ack(conversation.team_id, conversation.language, now)
        routed.replies.append(
            Reply(conversation, item, AuthorKind.SYSTEM, text, f"handoff-ack:{item.message_id}")
        )

    def _handoff_ack(self, team_id: int | None, language: str | None, now: dt.datetime) -> str:
        """What the customer handed off is told: soon, or when the team opens if it is closed."""
        russian = language == "ru"
        hours = self.rules.hours_of(team_id)
        opens = hours.next_opening(now) if hours is not None else None
        if hours is not None and opens is not None and opens > now:
            template = self.settings.closed_ack_ru if russian else self.settings.closed_ack_en
            return template.format(opens=phrases.opening(opens, hours.zone, language))
        template = self.settings.handoff_ack_ru if russian else self.settings.handoff_ack_en
        return template.format(minutes=self.settings.usual_wait_minutes)

    @staticmethod
    def _bot_reply(
        item: Stored, text: str, purpose: str, buttons: list[Button] | None = None
    ) -> Reply:
        return Reply(
            item.conversation,
            item,
            AuthorKind.BOT,
            text,
            f"{purpose}:{item.message_id}",
            tuple(buttons or ()),
        )

    @staticmethod
    def _set_state(
        conversation: ConversationRow, state: ConversationState, reason: str, routed: Routed
    ) -> None:
        conversation.state = state
        routed.changes.append(StateChange(conversation.id, state, reason))


def _decision(
    item: Stored,
    outcome: DecisionOutcome,
    answer: Answer | None,
    threshold: float | None,
    *,
    reason: str | None = None,
) -> Decision:
    return Decision(
        message_id=item.message_id,
        conversation_id=item.conversation.id,
        network=item.conversation.network,
        outcome=outcome,
        reason=reason,
        article_id=answer.article_id if answer else None,
        confidence=answer.confidence if answer else None,
        threshold=threshold,
    )


def _system_reply(item: Stored, text: str, purpose: str) -> Reply:
    """About the rating, not an answer: kept out of the bot's figures (its first response)."""
    return Reply(item.conversation, item, AuthorKind.SYSTEM, text, f"{purpose}:{item.message_id}")


def awaiting_comment(asks: Sequence[RatingAsk], now: dt.datetime) -> RatingAsk | None:
    """The request rated last, if it was rated within `COMMENT_WINDOW` and has no comment yet."""
    rated = [(ask.rated_at, ask) for ask in asks if ask.rated_at is not None]
    if not rated:
        return None
    rated_at, ask = max(rated, key=lambda pair: pair[0])
    return ask if ask.comment is None and now - rated_at <= COMMENT_WINDOW else None


def is_comment(message: InboundMessage) -> bool:
    """Text alone that does not ask for anything: a question, a call for a person or "it did
    not help" is a new request, better reopened than kept as a comment nobody answers."""
    text = message.text.strip()
    if message.kind != "message" or not text or message.attachments:
        return False
    return "?" not in text and not asks_for_human(text) and not says_not_helped(text)
