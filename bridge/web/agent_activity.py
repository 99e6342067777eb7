"""An open inbox page keeps its agent's presence: seen while the page is open, active while they
use it (the page says so on its socket, at most every `ACTIVE_NOTE_S`). Colleagues see the
status that follows (`bridge.inbox.agent_status`), and only online agents get conversations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.agent_status import RENEW_S, page_seen
from bridge.store.models import utcnow

log = logging.getLogger(__name__)

ACTIVE_NOTE = '{"active":true}'
# what a page sends at most this often; more frequent notes are not written
ACTIVE_NOTE_S = 30.0


class PageActivity:
    def __init__(
        self, engine: AsyncEngine, agent_id: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._agent_id = agent_id
        self._clock = clock
        self._noted = float("-inf")

    async def keep_seen(self) -> None:
        """Until cancelled (the page closed): the agent's page is open."""
        while True:
            await self._write(active=False)
            await asyncio.sleep(RENEW_S)

    async def heard(self, text: str) -> bool:
        """Whether `text` was the page's note that its agent uses it (then written)."""
        if text != ACTIVE_NOTE:
            return False
        now = self._clock()
        if now - self._noted >= ACTIVE_NOTE_S / 3:
            self._noted = now
            await self._write(active=True)
        return True

    async def _write(self, *, active: bool) -> None:
        try:
            await page_seen(self._engine, self._agent_id, utcnow(), active=active)
        except Exception as exc:  # a store that hiccups must not close the agent's page
            log.warning("agent %d's presence not written: %s", self._agent_id, exc)
