"""The application keys of the inbox: what `bridge.web.app.add_inbox` puts on the aiohttp
application once, for the pages, the REST API, sign-in and the live socket to read."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.channel import FileFetcher, FileLimits
from bridge.domain import Network
from bridge.inbox.view_counts import SharedCounts
from bridge.knowledge.responder import KnowledgeResponder
from bridge.settings import Settings

ENGINE = web.AppKey("inbox_engine", AsyncEngine)
BUS = web.AppKey("inbox_bus", Bus)
SETTINGS = web.AppKey("inbox_settings", Settings)
# the views' counts, shared by the pages asking at the same moment
COUNTS = web.AppKey("view_counts", SharedCounts)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeResponder)
# how to fetch a customer's file, per network (one without it says so)
FILES = web.AppKey("files", Mapping[Network, FileFetcher])
# what each network takes of the files agents send (one without it takes none from here)
FILE_LIMITS = web.AppKey("file_limits", Mapping[Network, FileLimits])
