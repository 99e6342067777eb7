"""Knowledge-base articles for admins: list, read, create, change (any of their fields),
disable, delete, and each one's history of who changed what and when. A change reaches the bot
within `kb_refresh_seconds`. Refusals: 404 no such article, 409 an id taken or a value the
knowledge base cannot use (with the reason), 400 a body that is not one."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from bridge.knowledge.article_edits import (
    ID_PATTERN,
    MAX_ANSWER_CHARS,
    MAX_EXAMPLE_CHARS,
    MAX_EXAMPLES,
    MAX_ID_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    Action,
    ArticleEdit,
    ArticleFields,
    ArticleNotFound,
    article_history,
    create_article,
    delete_article,
    update_article,
)
from bridge.knowledge.articles import load_article, load_articles
from bridge.web import auth
from bridge.web.api.common import Body, Done, json_response, read_body
from bridge.web.keys import ENGINE
from bridge.web.openapi import Endpoints
from kb.articles import Article, ArticleError

endpoints = Endpoints()

ArticleId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)
]
# in a path: any stored id (one imported by `kb import` may be outside the pattern of new ones)
ARTICLE_ID = (("article_id", {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}),)
Title = Annotated[str, StringConstraints(max_length=MAX_TITLE_CHARS)]
AnswerText = Annotated[str, StringConstraints(max_length=MAX_ANSWER_CHARS)]
Example = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EXAMPLE_CHARS)]
Examples = Annotated[list[Example], Field(min_length=1, max_length=MAX_EXAMPLES)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG_CHARS, pattern=r"^[^,|]+$")]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]


class Answers(Body):
    """The answer in each language. A new article may leave one out; a change sets the
    languages it names (an empty or null one is removed) and keeps the other."""

    ru: AnswerText | None = None
    en: AnswerText | None = None

    def texts(self) -> dict[str, str]:
        return {language: text for language, text in self.model_dump().items() if text}


class ArticleIn(Body):
    id: ArticleId
    title: Title = ""
    answers: Answers
    examples: Examples = Field(description="customer questions it answers, Russian or English")
    tags: Tags = Field(default_factory=list)
    never_auto: bool = False
    threshold: Threshold | None = Field(default=None, description="null: the default applies")
    enabled: bool = True


def _without_defaults(schema: dict[str, Any]) -> None:
    """A field left out of a change keeps its value: no default to document."""
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class ArticlePatch(Body):
    """The fields to change; those left out stay as they are. `answers` changes the languages
    it names (an empty answer removes one); `threshold: null` returns to the default."""

    model_config = ConfigDict(json_schema_extra=_without_defaults)

    # the defaults are never used: only the fields given are (`model_fields_set`)
    title: Title = ""
    answers: Answers = Field(default_factory=Answers)
    examples: Examples = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)
    never_auto: bool = False
    threshold: Threshold | None = None
    enabled: bool = True


class ArticleOut(BaseModel):
    id: str
    title: str
    answers: dict[str, str]
    examples: list[str]
    tags: list[str]
    never_auto: bool
    threshold: float | None
    enabled: bool


class ArticleList(BaseModel):
    articles: list[ArticleOut]


class FieldChange(BaseModel):
    before: JsonValue
    after: JsonValue


class ArticleChangeOut(BaseModel):
    action: Action
    changes: dict[str, FieldChange] = Field(
        description="each changed field: before is null on creation, after null on deletion"
    )
    agent_id: int | None
    agent_login: str | None
    agent_name: str | None
    at: dt.datetime


class ArticleHistory(BaseModel):
    article_id: str
    changes: list[ArticleChangeOut] = Field(description="newest first")


def _out(article: Article) -> ArticleOut:
    return ArticleOut(
        id=article.id,
        title=article.title,
        answers=dict(article.answers),
        examples=list(article.examples),
        tags=list(article.tags),
        never_auto=article.never_auto,
        threshold=article.threshold,
        enabled=article.enabled,
    )


def _change_out(edit: ArticleEdit) -> ArticleChangeOut:
    return ArticleChangeOut(
        action=edit.action,
        changes={
            name: FieldChange.model_validate({"before": before, "after": after})
            for name, (before, after) in edit.changes.items()
        },
        agent_id=edit.agent_id,
        agent_login=edit.agent_login,
        agent_name=edit.agent_name,
        at=edit.at,
    )


def _fields(patch: ArticlePatch) -> ArticleFields:
    given = patch.model_fields_set
    fields: ArticleFields = {}
    if "title" in given:
        fields["title"] = patch.title
    if "answers" in given:
        named = patch.answers.model_dump(include=patch.answers.model_fields_set)
        fields["answers"] = {language: text or "" for language, text in named.items()}
    if "examples" in given:
        fields["examples"] = tuple(patch.examples)
    if "tags" in given:
        fields["tags"] = tuple(patch.tags)
    if "never_auto" in given:
        fields["never_auto"] = patch.never_auto
    if "threshold" in given:
        fields["threshold"] = patch.threshold
    if "enabled" in given:
        fields["enabled"] = patch.enabled
    return fields


@endpoints.route(
    "GET", "/api/admin/kb/articles", "Every knowledge-base article", answer=ArticleList, admin=True
)
async def articles_list(request: web.Request) -> web.Response:
    stored = await load_articles(request.app[ENGINE])
    return json_response(ArticleList(articles=[_out(a) for a in stored]))


@endpoints.route(
    "POST",
    "/api/admin/kb/articles",
    "Add a knowledge-base article (answered from within kb_refresh_seconds)",
    body=ArticleIn,
    answer=ArticleOut,
    admin=True,
)
async def articles_add(request: web.Request) -> web.Response:
    agent = auth.current_session(request).agent
    body = await read_body(request, ArticleIn)
    try:
        article = Article(
            id=body.id,
            title=body.title,
            answers=body.answers.texts(),
            examples=tuple(body.examples),
            tags=tuple(body.tags),
            never_auto=body.never_auto,
            threshold=body.threshold,
            enabled=body.enabled,
        )
        stored = await create_article(request.app[ENGINE], article, agent.id)
    except ArticleError as exc:  # an id taken, a value it cannot use: the reason
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(_out(stored))


async def _article(request: web.Request) -> Article:
    article = await load_article(request.app[ENGINE], request.match_info["article_id"])
    if article is None:
        raise web.HTTPNotFound(text="no such article")
    return article


@endpoints.route(
    "GET",
    "/api/admin/kb/articles/{article_id}",
    "One knowledge-base article",
    path_params=ARTICLE_ID,
    answer=ArticleOut,
    admin=True,
)
async def article_get(request: web.Request) -> web.Response:
    return json_response(_out(await _article(request)))


@endpoints.route(
    "PATCH",
    "/api/admin/kb/articles/{article_id}",
    "Change an article's fields, or disable it (enabled: false); its id stays",
    path_params=ARTICLE_ID,
    body=ArticlePatch,
    answer=ArticleOut,
    admin=True,
)
async def article_change(request: web.Request) -> web.Response:
    agent = auth.current_session(request).agent
    body = await read_body(request, ArticlePatch)
    article_id = request.match_info["article_id"]
    try:
        stored = await update_article(request.app[ENGINE], article_id, _fields(body), agent.id)
    except ArticleNotFound:
        raise web.HTTPNotFound(text="no such article") from None
    except ArticleError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(_out(stored))


@endpoints.route(
    "DELETE",
    "/api/admin/kb/articles/{article_id}",
    "Delete an article (its history is kept)",
    path_params=ARTICLE_ID,
    answer=Done,
    admin=True,
)
async def article_delete(request: web.Request) -> web.Response:
    agent = auth.current_session(request).agent
    try:
        await delete_article(request.app[ENGINE], request.match_info["article_id"], agent.id)
    except ArticleNotFound:
        raise web.HTTPNotFound(text="no such article") from None
    return json_response(Done())


@endpoints.route(
    "GET",
    "/api/admin/kb/articles/{article_id}/history",
    "Who created, changed or deleted the article, what and when, newest first",
    path_params=ARTICLE_ID,
    answer=ArticleHistory,
    admin=True,
)
async def article_history_get(request: web.Request) -> web.Response:
    article_id = request.match_info["article_id"]
    edits = await article_history(request.app[ENGINE], article_id)
    if not edits and await load_article(request.app[ENGINE], article_id) is None:
        raise web.HTTPNotFound(text="no such article")
    return json_response(
        ArticleHistory(article_id=article_id, changes=[_change_out(e) for e in edits])
    )
