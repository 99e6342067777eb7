"""The admin's dashboard: the service's figures over a date range and network, with charts, and
every table as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import aiohttp_jinja2
from aiohttp import web

from bridge.domain import Network
from bridge.reports.figures import Period, Report, compute, tables
from bridge.web.keys import ENGINE, SETTINGS
from bridge.web.pages import context

routes = web.RouteTableDef()
DEFAULT_DAYS = 7
MAX_DAYS = 366
CHART_W, CHART_H = 640, 200


def _period(request: web.Request) -> Period:
    today = dt.datetime.now(dt.UTC).date()
    try:
        end_day = dt.date.fromisoformat(request.query["to"]) if request.query.get("to") else today
        start_day = (
            dt.date.fromisoformat(request.query["from"])
            if request.query.get("from")
            else end_day - dt.timedelta(days=DEFAULT_DAYS - 1)
        )
        network = Network(request.query["network"]) if request.query.get("network") else None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"from / to are dates (YYYY-MM-DD); network: {exc}") from None
    if start_day > end_day or (end_day - start_day).days >= MAX_DAYS:
        raise web.HTTPBadRequest(text=f"a range of 1 to {MAX_DAYS} days, from before to")
    start = dt.datetime.combine(start_day, dt.time(), dt.UTC)
    end = dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    return Period(start, end, network)


async def _report(request: web.Request) -> Report:
    """The figures of the range and network the query asks for."""
    return await compute(request.app[ENGINE], _period(request), request.app[SETTINGS].sla_for())


def _volume_lines(
    volume: dict[Network, dict[dt.date, int]], days: list[dt.date], peak: int
) -> list[dict[str, str]]:
    step = CHART_W / max(1, len(days) - 1)
    return [
        {
            "network": network.value,
            "points": " ".join(
                f"{i * step:.1f},{CHART_H - per_day.get(day, 0) / peak * CHART_H:.1f}"
                for i, day in enumerate(days)
            ),
        }
        for network, per_day in sorted(volume.items())
    ]


@routes.get("/admin/dashboard")
async def dashboard_page(request: web.Request) -> web.Response:
    report = await _report(request)
    period, volume = report.period, report.volume
    peak = max([1, *(n for per_day in volume.values() for n in per_day.values())])
    handoff_peak = max([1, *report.handoffs.values()])
    return aiohttp_jinja2.render_template(
        "dashboard.html",
        request,
        context(
            request,
            report=report,
            tables=tables(report),
            period_from=period.start.date().isoformat(),
            period_to=(period.end - dt.timedelta(days=1)).date().isoformat(),
            network=period.network,
            networks=list(Network),
            lines=_volume_lines(volume, period.days, peak),
            peak=peak,
            handoff_peak=handoff_peak,
            chart={"w": CHART_W, "h": CHART_H},
            query=request.query_string,
        ),
    )


@routes.get("/admin/dashboard.csv")
async def dashboard_csv(request: web.Request) -> web.Response:
    report = await _report(request)
    period = report.period
    name = request.query.get("table", "summary")
    named = tables(report)
    if name not in named:
        raise web.HTTPBadRequest(text=f"table: one of {', '.join(named)}")
    headers, rows = named[name]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    last_day = (period.end - dt.timedelta(days=1)).date()
    filename = f"supportbridge-{name}-{period.start.date()}-{last_day}.csv"
    return web.Response(
        text=buffer.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
