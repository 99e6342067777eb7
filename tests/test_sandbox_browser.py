"""The sandbox in a real browser: a person plays a Telegram customer and sees the bot answer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.ports import free_port
from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent.parent / "screenshots"
pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SB_")} | {
        "SB_CONFIG": os.devnull,
        "SB_DATA_DIR": str(tmp_path),
        "SB_HTTP_PORT": str(port),
        "SB_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--sandbox"], env=env, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.2)
    yield base
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 780})  # a phone
        yield context.new_page()
        browser.close()


def test_a_customer_writes_in_the_sandbox_and_sees_the_bots_acknowledgement(sandbox, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{sandbox}/sandbox/")
    page.fill("#name", "Иван")
    page.fill("#text", "Не работает интернет")
    page.click("button[type=submit]")

    page.wait_for_selector(".msg.bot", timeout=20_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "sandbox-customer.png"))

    assert page.inner_text(".msg.me").startswith("Не работает интернет")
    assert page.inner_text(".msg.bot").startswith("Спасибо! Скоро вам ответит оператор")


def test_customer_text_is_shown_as_text_not_markup(sandbox, page) -> None:  # type: ignore[no-untyped-def]
    attack = "<img src=x onerror=\"document.title='pwned'\">"
    page.goto(f"{sandbox}/sandbox/")
    page.fill("#text", attack)
    page.click("button[type=submit]")

    page.wait_for_selector(".msg.me")
    assert page.inner_text(".msg.me").startswith(attack)
    assert page.title() != "pwned"
    assert page.query_selector(".msg.me img") is None
