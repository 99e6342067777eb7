"""The admin's threshold page: precision and coverage against the threshold, from evidence, for
the global threshold, each network's and each article's; what a change would do; saving it
(audited; every process follows within seconds)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from bridge.domain import Network
from bridge.knowledge.articles import load_articles
from bridge.knowledge.evidence import Curve, Evidence, threshold_curve
from bridge.knowledge.out_of_scope import MIN_JUDGED, estimate_out_of_scope
from bridge.pipeline.thresholds import (
    GLOBAL,
    LiveThresholds,
    ThresholdError,
    recent_changes,
    save_threshold,
)
from bridge.web import auth
from bridge.web.keys import ENGINE, KNOWLEDGE, SETTINGS
from bridge.web.pages import back_with_error, context
from kb.datasets import DatasetError, read_labelled_csv

routes = web.RouteTableDef()
DEFAULT_WEEKS = 4
CHART_W, CHART_H = 640, 240


def _parse_scope(scope: str, article_ids: set[str]) -> tuple[Network | None, str | None]:
    if scope == GLOBAL:
        return None, None
    kind, _, name = scope.partition(":")
    if kind == "network" and name in {n.value for n in Network}:
        return Network(name), None
    if kind == "article" and name in article_ids:
        return None, name
    raise web.HTTPBadRequest(text=f"unknown scope {scope!r}")


async def _in_force(
    request: web.Request, network: Network | None, article_threshold: float | None
) -> float:
    live = LiveThresholds(request.app[ENGINE], request.app[SETTINGS])
    await live.refresh()
    if article_threshold is not None:
        return article_threshold
    return live.for_network(network) if network is not None else live.global_value()


def _polyline(curve: Curve, attribute: str) -> str:
    points = []
    for point in curve.points:
        value = getattr(point, attribute)
        if value is None:
            continue
        points.append(f"{point.threshold * CHART_W:.1f},{(1 - value) * CHART_H:.1f}")
    return " ".join(points)


async def _render(
    request: web.Request, labelled: list[Evidence], labelled_name: str | None, error: str | None
) -> web.Response:
    engine = request.app[ENGINE]
    articles = await load_articles(engine)
    scope = request.query.get("scope", GLOBAL)
    network, article_id = _parse_scope(scope, {a.id for a in articles})
    try:
        weeks = min(52.0, max(1.0, float(request.query.get("weeks", DEFAULT_WEEKS))))
    except ValueError:
        raise web.HTTPBadRequest(text="weeks: a number of weeks") from None
    article = next((a for a in articles if a.id == article_id), None)
    in_force = await _in_force(request, network, article.threshold if article else None)
    curve = await threshold_curve(
        engine, weeks=weeks, network=network, article_id=article_id, labelled=labelled
    )
    values: dict[str, Any] = {
        "scope": scope,
        "scopes": [GLOBAL]
        + [f"network:{n.value}" for n in Network]
        + [f"article:{a.id}" for a in articles],
        "weeks": weeks,
        "curve": curve,
        "in_force": in_force,
        "coverage_line": _polyline(curve, "coverage"),
        "precision_line": _polyline(curve, "precision"),
        "chart": {"w": CHART_W, "h": CHART_H},
        "points": [
            {
                "t": p.threshold,
                "coverage": p.coverage,
                "precision": p.precision,
                "per_week": p.answered_per_week,
            }
            for p in curve.points
        ],
        "out_of_scope": await estimate_out_of_scope(engine),
        "min_judged": MIN_JUDGED,
        "changes": await recent_changes(engine),
        "labelled_name": labelled_name,
        "error": error or request.query.get("error"),
    }
    return aiohttp_jinja2.render_template("thresholds.html", request, context(request, **values))


@routes.get("/admin/thresholds")
async def thresholds_page(request: web.Request) -> web.Response:
    return await _render(request, [], None, None)


@routes.post("/admin/thresholds/labelled")
async def labelled_upload(request: web.Request) -> web.Response:
    """A labelled question file (`kb eval` format: text,label) adds judged evidence."""
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return await _render(request, [], None, "choose a CSV file with the columns text,label")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labelled.csv"
        path.write_bytes(upload.file.read())
        try:
            questions = read_labelled_csv(path)
        except DatasetError as exc:
            problems = "; ".join(exc.problems[:3])
            return await _render(request, [], None, f"{upload.filename}: {problems}")
    matches = await request.app[KNOWLEDGE].best_matches([q.text for q in questions])
    if len(matches) != len(questions):
        message = "the knowledge base cannot match questions now (no articles, or see the log)"
        return await _render(request, [], upload.filename, message)
    labelled = [
        Evidence(confidence, question.in_scope and article == question.label)
        for question, (article, confidence) in zip(questions, matches, strict=True)
    ]
    return await _render(request, labelled, upload.filename, None)


@routes.post("/admin/thresholds")
async def save(request: web.Request) -> web.StreamResponse:
    session = auth.current_session(request)
    form = await request.post()
    scope = str(form.get("scope", GLOBAL))
    back = f"/admin/thresholds?scope={quote(scope)}"
    try:
        raw = str(form.get("value", ""))
        value = None if form.get("remove") else float(raw)
        await save_threshold(
            request.app[ENGINE], request.app[SETTINGS], scope, value, session.agent.id
        )
    except (ThresholdError, ValueError) as exc:
        raise back_with_error(back, exc) from None
    raise web.HTTPSeeOther(back)
