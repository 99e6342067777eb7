"""The REST API under `/api/`: everything the inbox pages do, as JSON, for integrations (token
auth) and scripts. Described by the OpenAPI document at `/api/openapi.json`.

One module per resource declares its endpoints; `api` lists those modules, in the document's
order. What they share is in `common`."""

from __future__ import annotations

from aiohttp import web

from bridge.knowledge.responder import KnowledgeResponder
from bridge.web.api import (
    agent_status,
    agents,
    articles,
    attachments,
    conversation_actions,
    conversations,
    customers,
    knowledge,
    labels,
    routing_rules,
    teams,
)
from bridge.web.api.common import json_errors
from bridge.web.keys import KNOWLEDGE
from bridge.web.openapi import Api

__all__ = ["api", "install", "json_errors"]

api = Api(
    "supportbridge",
    "1",
    (
        conversations.endpoints,
        attachments.endpoints,
        conversation_actions.endpoints,
        customers.endpoints,
        labels.endpoints,
        teams.endpoints,
        routing_rules.endpoints,
        knowledge.endpoints,
        articles.endpoints,
        agents.endpoints,
        agent_status.endpoints,
    ),
)


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(api.document())


def install(app: web.Application, responder: KnowledgeResponder) -> None:
    app[KNOWLEDGE] = responder
    app.router.add_routes(api.routes())
    app.router.add_get("/api/openapi.json", openapi_document)
