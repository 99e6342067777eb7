"""The knowledge base as agents search it: the articles for a question, best first."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from bridge.web.api.common import LANGUAGE_PARAM, json_response
from bridge.web.keys import KNOWLEDGE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()


class ArticleHit(BaseModel):
    article_id: str
    title: str
    answer: str
    confidence: float


class ArticleHits(BaseModel):
    articles: list[ArticleHit]


@endpoints.route(
    "GET",
    "/api/kb/search",
    "Knowledge-base articles for a question, best first, answers in the language asked",
    answer=ArticleHits,
    query=(("q", {"type": "string", "maxLength": 1000}), ("language", LANGUAGE_PARAM)),
)
async def kb_search(request: web.Request) -> web.Response:
    language = request.query.get("language") or None
    hits = await request.app[KNOWLEDGE].search(request.query.get("q", "")[:1000], language, k=3)
    return json_response(
        ArticleHits(articles=[ArticleHit.model_validate(h, from_attributes=True) for h in hits])
    )
