"""The admins' knowledge-base pages: the list of articles; one article's form (answers in both
languages, examples, tags, never-auto, threshold, enabled) with its history of who changed what
and when; a new article, blank or drafted from an agent's reply or a knowledge gap; deleting.
The writes are `bridge.knowledge.article_edits`, the same the REST API calls."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp_jinja2
import sqlalchemy as sa
from aiohttp import web

from bridge.domain import Direction
from bridge.inbox.solutions import Solution, load_solution
from bridge.knowledge.article_edits import (
    ArticleEdit,
    ArticleFields,
    ArticleNotFound,
    article_history,
    create_article,
    delete_article,
    update_article,
)
from bridge.knowledge.articles import load_article, load_articles
from bridge.store.models import conversations, messages
from bridge.web import auth
from bridge.web.keys import ENGINE
from bridge.web.openapi import row_id
from bridge.web.pages import context
from kb.articles import Article, ArticleError

routes = web.RouteTableDef()
SHORT = 80  # characters of a value in the history; the form shows it whole


@dataclass(frozen=True, slots=True)
class Draft:
    """The article form's fields as text, as the admin typed them (shown again when refused)."""

    id: str = ""
    title: str = ""
    answer_ru: str = ""
    answer_en: str = ""
    examples: str = ""  # one question a line
    tags: str = ""  # separated by commas
    never_auto: bool = False
    threshold: str = ""  # empty: the network's or the global threshold applies
    enabled: bool = True

    @classmethod
    def of(cls, article: Article) -> Draft:
        return cls(
            id=article.id,
            title=article.title,
            answer_ru=article.answers.get("ru", ""),
            answer_en=article.answers.get("en", ""),
            examples="\n".join(article.examples),
            tags=", ".join(article.tags),
            never_auto=article.never_auto,
            threshold="" if article.threshold is None else f"{article.threshold:g}",
            enabled=article.enabled,
        )

    @classmethod
    def posted(cls, form: Mapping[str, object]) -> Draft:
        def text(name: str) -> str:
            return str(form.get(name, ""))

        return cls(
            id=text("id").strip(),
            title=text("title"),
            answer_ru=text("answer_ru"),
            answer_en=text("answer_en"),
            examples=text("examples"),
            tags=text("tags"),
            never_auto="never_auto" in form,  # a checkbox is sent only when ticked
            threshold=text("threshold").strip(),
            enabled="enabled" in form,
        )

    def fields(self) -> ArticleFields:
        """What the form sets (the store checks the rest); ArticleError for a bad threshold."""
        try:
            # "0,8" too: the decimal comma of Russian keyboards
            threshold = float(self.threshold.replace(",", ".")) if self.threshold else None
        except ValueError:
            raise ArticleError(
                f"threshold: {self.threshold!r} is not a number from 0 to 1 (empty: the default)"
            ) from None
        return {
            "title": self.title,
            "answers": {"ru": self.answer_ru, "en": self.answer_en},
            "examples": tuple(self.examples.splitlines()),
            "tags": tuple(self.tags.split(",")),
            "never_auto": self.never_auto,
            "threshold": threshold,
            "enabled": self.enabled,
        }

    def article(self) -> Article:
        return Article(id=self.id, **self.fields())


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One changed field of a history entry, short. For examples and tags, `before` is what was
    removed and `after` what was added."""

    field: str
    before: str | bool | None
    after: str | bool | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    action: str
    who: str | None
    at: dt.datetime
    lines: list[ChangeLine]


def _short(value: object) -> str | bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = " ".join(str(value).split())
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def _listed(values: object) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def change_lines(changes: Mapping[str, tuple[object, object]]) -> list[ChangeLine]:
    """The history's lines of one entry: answers per language, lists as removed and added."""
    lines: list[ChangeLine] = []
    for name, (before, after) in changes.items():
        if name == "answers":
            old = before if isinstance(before, dict) else {}
            new = after if isinstance(after, dict) else {}
            lines += [
                ChangeLine(
                    f"answer_{language}", _short(old.get(language)), _short(new.get(language))
                )
                for language in ("ru", "en")
                if old.get(language) != new.get(language)
            ]
        elif name in ("examples", "tags"):
            old_items, new_items = _listed(before), _listed(after)
            removed = [item for item in old_items if item not in new_items]
            added = [item for item in new_items if item not in old_items]
            if removed or added:  # a new order alone is not worth a line
                lines.append(
                    ChangeLine(
                        name, _short(" · ".join(removed)) or None, _short(" · ".join(added)) or None
                    )
                )
        else:
            lines.append(ChangeLine(name, _short(before), _short(after)))
    return lines


def _entry(edit: ArticleEdit) -> HistoryEntry:
    return HistoryEntry(
        edit.action.value, edit.agent_name or edit.agent_login, edit.at, change_lines(edit.changes)
    )


async def _form(
    request: web.Request,
    draft: Draft,
    *,
    article: Article | None = None,
    error: str | None = None,
) -> web.Response:
    """The form of a new article (`article` None) or of a stored one, with its history."""
    history: list[HistoryEntry] = []
    if article is not None:
        history = [_entry(e) for e in await article_history(request.app[ENGINE], article.id)]
    return aiohttp_jinja2.render_template(
        "article_form.html",
        request,
        context(request, draft=draft, article=article, history=history, error=error),
        status=400 if error else 200,
    )


@routes.get("/admin/kb")
async def kb_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "kb.html",
        request,
        context(request, articles=await load_articles(request.app[ENGINE])),
    )


def _slug(text: str) -> str:
    return "-".join(re.findall(r"[a-zа-я0-9]+", text.lower()))[:48].strip("-")


async def _draft_from_reply(request: web.Request, message_id: int) -> Draft:
    """The agent's reply as the answer, the customer's question before it as the example."""
    m = messages.c
    engine = request.app[ENGINE]
    async with engine.connect() as conn:
        reply = (
            await conn.execute(
                sa.select(m.id, m.conversation_id, m.text, conversations.c.language)
                .join(conversations, conversations.c.id == m.conversation_id)
                .where(
                    m.id == message_id, m.author_kind == "agent", m.direction == Direction.OUTBOUND
                )
            )
        ).first()
        if reply is None:
            raise web.HTTPNotFound(text="no agent reply with this id")
        question = (
            await conn.execute(
                sa.select(m.text)
                .where(
                    m.conversation_id == reply.conversation_id,
                    m.id < reply.id,
                    m.direction == Direction.INBOUND,
                )
                .order_by(m.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    question = question or ""
    in_english = reply.language == "en"
    return Draft(
        id=_slug(question) or f"reply-{message_id}",
        title=question[:120],
        examples=question,
        answer_ru="" if in_english else reply.text,
        answer_en=reply.text if in_english else "",
    )


def _draft_from_solution(solution: Solution) -> Draft:
    """The customer's answer as the article's answer, the question it answered as the example."""
    in_english = solution.language == "en"
    return Draft(
        id=_slug(solution.question) or f"solution-{solution.id}",
        title=solution.question[:120],
        examples=solution.question,
        answer_ru="" if in_english else solution.answer,
        answer_en=solution.answer if in_english else "",
    )


@routes.get("/admin/kb/new")
async def new_article_page(request: web.Request) -> web.Response:
    draft = Draft()
    if "message_id" in request.query:
        reply_id = row_id(request.query["message_id"])
        if reply_id is None:
            raise web.HTTPNotFound(text="no agent reply with this id")
        draft = await _draft_from_reply(request, reply_id)
    elif "solution" in request.query:  # a customer's answer to another, in a public thread
        solution_id = row_id(request.query["solution"])
        solution = (
            None if solution_id is None else await load_solution(request.app[ENGINE], solution_id)
        )
        if solution is None:
            raise web.HTTPNotFound(text="no solution with this id")
        draft = _draft_from_solution(solution)
    elif request.query.get("questions"):  # a knowledge gap: its questions as the examples
        questions = request.query["questions"][:4000]
        first = questions.splitlines()[0]
        draft = Draft(id=_slug(first), title=first[:120], examples=questions)
    return await _form(request, draft)


@routes.post("/admin/kb")
async def create_article_action(request: web.Request) -> web.StreamResponse:
    draft = Draft.posted(await request.post())
    agent_id = auth.current_session(request).agent.id
    try:
        article = await create_article(request.app[ENGINE], draft.article(), agent_id)
    except ArticleError as exc:
        return await _form(request, draft, error=str(exc))
    raise web.HTTPSeeOther(_page_of(article))


def _page_of(article: Article) -> str:
    return f"/admin/kb/{quote(article.id, safe='')}"


async def _stored(request: web.Request) -> Article:
    article = await load_article(request.app[ENGINE], request.match_info["article_id"])
    if article is None:
        raise web.HTTPNotFound(text="no such article")
    return article


@routes.get("/admin/kb/{article_id}")
async def article_page(request: web.Request) -> web.Response:
    article = await _stored(request)
    return await _form(request, Draft.of(article), article=article)


@routes.post("/admin/kb/{article_id}")
async def save_article_action(request: web.Request) -> web.StreamResponse:
    article = await _stored(request)
    draft = Draft.posted(await request.post())
    agent_id = auth.current_session(request).agent.id
    try:
        await update_article(request.app[ENGINE], article.id, draft.fields(), agent_id)
    except ArticleNotFound:
        raise web.HTTPNotFound(text="no such article") from None
    except ArticleError as exc:
        return await _form(request, draft, article=article, error=str(exc))
    raise web.HTTPSeeOther(_page_of(article))


@routes.post("/admin/kb/{article_id}/delete")
async def delete_article_action(request: web.Request) -> web.StreamResponse:
    agent_id = auth.current_session(request).agent.id
    try:
        await delete_article(request.app[ENGINE], request.match_info["article_id"], agent_id)
    except ArticleNotFound:
        raise web.HTTPNotFound(text="no such article") from None
    raise web.HTTPSeeOther("/admin/kb")
