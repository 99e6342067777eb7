"""`supportbridge report --week`: the figures of a known week as HTML and JSON, with savings,
and e-mailed to a real SMTP server when one is configured."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.ports import free_port
from bridge.reports.weekly import last_full_week
from supportbridge.cli import main
from tests.known_week import fill_known_week


class Inbox:
    """An SMTP server's handler that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content  # type: ignore[attr-defined]
        self.received.append(message_from_bytes(content, policy=policy.default))
        return "250 OK"


@pytest.fixture
async def known_week(engine: AsyncEngine) -> None:
    await fill_known_week(engine)


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def run_report(database_url: str, out: Path, **env: str) -> tuple[int, str]:
    environment = {"SB_CONFIG": "/dev/null", "SB_DATABASE_URL": database_url, **env}
    result = CliRunner().invoke(
        main, ["report", "--week", "--before", "2026-11-11", "--out", str(out)], env=environment
    )
    return result.exit_code, result.output


def test_the_last_full_week_runs_monday_to_sunday() -> None:
    period = last_full_week(dt.date(2026, 11, 11))

    assert (period.start.date(), period.end.date()) == (dt.date(2026, 11, 2), dt.date(2026, 11, 9))


def test_the_report_holds_the_weeks_figures_and_the_savings(
    migrated_url: str,
    known_week: None,
    tmp_path: Path,
) -> None:
    code, output = run_report(migrated_url, tmp_path, SB_COST_PER_CONTACT="200")

    assert code == 0, output
    data = json.loads((tmp_path / "supportbridge-week-2026-11-02.json").read_text())
    assert data["figures"]["conversations"] == 4
    assert data["figures"]["self_service_rate"] == 0.25
    assert data["savings"] == {"amount": 200.0, "currency": "RUB"}
    assert data["handoffs"] == {"repeated_misses": 1, "asked_for_human": 1, "low_confidence": 1}
    page = (tmp_path / "supportbridge-week-2026-11-02.html").read_text()
    assert 'id="self-service-rate">25%<' in page and 'id="savings">200 RUB<' in page


def test_the_report_is_e_mailed_when_smtp_is_configured(
    migrated_url: str,
    known_week: None,
    tmp_path: Path,
    smtp: tuple[int, Inbox],
) -> None:
    port, inbox = smtp

    code, output = run_report(
        migrated_url,
        tmp_path,
        SB_SMTP_HOST="127.0.0.1",
        SB_SMTP_PORT=str(port),
        SB_SMTP_STARTTLS="false",
        SB_REPORT_TO='["boss@example.com"]',
    )

    assert code == 0, output
    (mail,) = inbox.received
    assert mail["To"] == "boss@example.com"
    assert mail["Subject"] == "supportbridge: week 2026-11-02 – 2026-11-08"
    kinds = [part.get_content_type() for part in mail.walk()]
    assert "text/html" in kinds and "application/json" in kinds


def test_an_unreachable_smtp_server_is_a_clear_error_and_the_files_stay(
    migrated_url: str,
    known_week: None,
    tmp_path: Path,
) -> None:
    code, output = run_report(
        migrated_url,
        tmp_path,
        SB_SMTP_HOST="127.0.0.1",
        SB_SMTP_PORT=str(free_port()),
        SB_REPORT_TO='["boss@example.com"]',
    )

    assert code == 1
    assert "the report could not be e-mailed" in output
    assert (tmp_path / "supportbridge-week-2026-11-02.html").exists()
