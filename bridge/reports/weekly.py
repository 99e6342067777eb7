"""`supportbridge report --week`: the last full week's figures (the dashboard's) as an HTML page
and a JSON file, with the savings of self-service, e-mailed when SMTP is configured."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2

from bridge.reports.figures import Period, Report, compute, tables
from bridge.settings import Settings
from bridge.store.engine import make_engine

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class WeeklyReport:
    report: Report
    savings: float
    currency: str

    def as_json(self) -> dict[str, Any]:
        named = tables(self.report)

        def records(name: str) -> list[dict[str, object]]:
            headers, rows = named[name]
            return [dict(zip(headers, row, strict=True)) for row in rows]

        return {
            "from": self.report.period.start.date().isoformat(),
            "to": (self.report.period.end - dt.timedelta(days=1)).date().isoformat(),
            "network": self.report.period.network.value if self.report.period.network else None,
            "figures": dict(named["summary"][1]),  # type: ignore[arg-type]
            "savings": {"amount": round(self.savings, 2), "currency": self.currency},
            "handoffs": dict(named["handoffs"][1]),  # type: ignore[arg-type]
            "volume": [
                dict(zip(named["volume"][0], row, strict=True)) for row in named["volume"][1]
            ],
            "load": [dict(zip(named["load"][0], row, strict=True)) for row in named["load"][1]],
            "csat": {"agents": records("csat_agents"), "networks": records("csat_networks")},
            "labels": records("labels"),
            "teams": records("teams"),
            "places": records("places"),
        }


def last_full_week(today: dt.date) -> Period:
    """Monday to Sunday, the week before the one `today` is in."""
    monday = today - dt.timedelta(days=today.weekday() + 7)
    start = dt.datetime.combine(monday, dt.time(), dt.UTC)
    return Period(start, start + dt.timedelta(days=7))


async def build(settings: Settings, period: Period) -> WeeklyReport:
    engine = make_engine(settings.effective_database_url)
    try:
        report = await compute(engine, period, settings.sla_for())
    finally:
        await engine.dispose()
    return WeeklyReport(report, report.self_service * settings.cost_per_contact, settings.currency)


def render_html(weekly: WeeklyReport) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("weekly_report.html").render(
        weekly=weekly, data=weekly.as_json(), tables=tables(weekly.report)
    )


def write(weekly: WeeklyReport, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"supportbridge-week-{weekly.report.period.start.date().isoformat()}"
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    html_path.write_text(render_html(weekly), encoding="utf-8")
    json_path.write_text(
        json.dumps(weekly.as_json(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return html_path, json_path


def send(settings: Settings, weekly: WeeklyReport, html_path: Path, json_path: Path) -> None:
    """By SMTP to `report_to`; raises OSError / smtplib.SMTPException with the server's reason."""
    assert settings.smtp_host is not None
    data = weekly.as_json()
    message = EmailMessage()
    message["Subject"] = f"supportbridge: week {data['from']} – {data['to']}"
    message["From"] = settings.report_from or f"supportbridge@{settings.smtp_host}"
    message["To"] = ", ".join(settings.report_to)
    message.set_content(
        f"Self-service rate: {data['figures']['self_service_rate']}; "
        f"savings {data['savings']['amount']} {data['savings']['currency']}; "
        f"CSAT {data['figures']['csat_mean']} of 5 from {data['figures']['csat_ratings']} "
        "ratings. "
        "The full report is attached."
    )
    message.add_alternative(html_path.read_text(encoding="utf-8"), subtype="html")
    message.add_attachment(
        json_path.read_bytes(), maintype="application", subtype="json", filename=json_path.name
    )
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)
