"""Who else is on a conversation: an open page says which conversation it shows and whether its
agent is typing; every other page showing it hears so through the bus's events.

Nothing is stored. A page repeats its note while it stays open and the others forget a note
that is not repeated, so a page that closes without a word (a lost network) fades out on its own;
the times are the page's (`inbox.js`)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.domain import Event, EventKind
from bridge.inbox.agents import AgentInfo

# A page sends a note when it opens, when a colleague's page opens, every 20 s, and every 3 s at
# most while its agent types; more than this is a page gone wrong, and its notes are dropped
# rather than sent on.
_NOTES_PER_WINDOW = 4
_WINDOW_S = 2.0


class PresenceNote(BaseModel):
    """What a page sends on its socket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    viewing: int = Field(gt=0, lt=2**63)
    typing: bool = False
    # a page that has just opened: those already there say so at once instead of at their next note
    hello: bool = False


class Presence:
    """One socket's notes: turns them into events, and says "left" when the page moves on."""

    def __init__(self, agent: AgentInfo, clock: Callable[[], float] = time.monotonic) -> None:
        self._agent = agent
        self._clock = clock
        self._viewing: int | None = None
        self._recent: deque[float] = deque(maxlen=_NOTES_PER_WINDOW)

    def note(self, text: str) -> list[Event]:
        """The events a note from the page makes: none for a malformed or too frequent one."""
        now = self._clock()
        if len(self._recent) == _NOTES_PER_WINDOW and now - self._recent[0] < _WINDOW_S:
            return []
        try:
            note = PresenceNote.model_validate_json(text)
        except ValidationError:
            return []
        self._recent.append(now)
        events = self.left() if note.viewing != self._viewing else []
        self._viewing = note.viewing
        return [*events, self._event(note.viewing, typing=note.typing, hello=note.hello)]

    def left(self) -> list[Event]:
        """The event that the page no longer shows its conversation (none if it showed none)."""
        if self._viewing is None:
            return []
        viewing, self._viewing = self._viewing, None
        return [self._event(viewing, left=True)]

    def _event(self, conversation_id: int, **state: bool) -> Event:
        return Event(
            kind=EventKind.AGENT_PRESENCE,
            conversation_id=conversation_id,
            data={"agent_id": self._agent.id, "name": self._agent.display_name, **state},
        )
