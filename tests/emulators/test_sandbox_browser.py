"""The sandbox in a real browser: a person plays a customer on Telegram, VK, Messenger and
Instagram (the emulators on the product's own port) or on the web chat of a demo brand page, and
sees the bot answer. (The web chat itself is in test_webchat_browser.py.)"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, Route

from tests.conftest import SCREENSHOTS

pytestmark = pytest.mark.slow
ACKNOWLEDGEMENT = "Спасибо! Скоро вам ответит оператор"


def test_a_customer_writes_in_the_sandbox_and_sees_the_bots_acknowledgement(
    sandbox: str, phone: Page
) -> None:
    phone.goto(f"{sandbox}/sandbox/")
    phone.fill("#name", "Иван")
    # a request for a person is handed off whatever the knowledge base knows
    phone.fill("#text", "Позовите оператора, пожалуйста")
    phone.click("button[type=submit]")

    phone.wait_for_selector(".msg.bot", timeout=20_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "sandbox-customer.png"))

    assert phone.get_attribute("#tab-telegram", "aria-selected") == "true"
    assert phone.inner_text(".msg.me").startswith("Позовите оператора, пожалуйста")
    assert phone.inner_text(".msg.bot").startswith(ACKNOWLEDGEMENT)


def test_customer_text_is_shown_as_text_not_markup(sandbox: str, phone: Page) -> None:
    attack = "<img src=x onerror=\"document.title='pwned'\">"
    phone.goto(f"{sandbox}/sandbox/")
    phone.fill("#text", attack)
    phone.click("button[type=submit]")

    phone.wait_for_selector(".msg.me")
    assert phone.inner_text(".msg.me").startswith(attack)
    assert phone.title() != "pwned"
    assert phone.query_selector(".msg.me img") is None


@pytest.mark.parametrize(
    ("tab", "title"),
    [
        ("vk", "VK (emulated)"),
        ("facebook", "Messenger (emulated)"),
        ("instagram", "Instagram (emulated)"),
    ],
)
def test_the_network_picker_lets_a_customer_write_on_each_network_and_see_the_acknowledgement(
    sandbox: str, phone: Page, tab: str, title: str
) -> None:
    phone.goto(f"{sandbox}/sandbox/")
    phone.click(f"#tab-{tab}")
    assert phone.inner_text("#network-title") == title
    phone.fill("#name", "Мария")
    phone.fill("#text", "Хочу поговорить с оператором")
    phone.click("button[type=submit]")

    phone.wait_for_selector(".msg.bot", timeout=20_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / f"sandbox-{tab}.png"))

    assert phone.inner_text(".msg.me").startswith("Хочу поговорить с оператором")
    assert phone.inner_text(".msg.bot").startswith(ACKNOWLEDGEMENT)
    # the other networks' conversations stay their own
    phone.click("#tab-telegram")
    phone.wait_for_selector(".empty")


def test_a_customer_answers_did_this_help_with_the_networks_own_buttons(
    sandbox: str, phone: Page
) -> None:
    phone.goto(f"{sandbox}/sandbox/#vk")
    phone.fill("#text", "Как оплатить счёт?")
    phone.click("button[type=submit]")
    phone.wait_for_selector(".msg.bot", timeout=60_000)  # a busy machine answers late
    answered = phone.inner_text(".msg.bot")
    assert phone.query_selector(".choices button"), f"no buttons under the answer: {answered!r}"
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "sandbox-vk-answer.png"))

    phone.click(".choices button >> text=Да, спасибо")

    phone.wait_for_function(
        "() => [...document.querySelectorAll('.msg.bot')].some(m => m.textContent.startsWith("
        "'Рады помочь'))",
        timeout=20_000,
    )
    assert phone.query_selector(".choices") is None


def test_an_answer_that_comes_before_the_question_is_acknowledged_still_shows_its_buttons(
    sandbox: str, phone: Page
) -> None:
    def answered_late(route: Route) -> None:
        response = route.fetch()
        time.sleep(3)  # the bot answers meanwhile, as it can on a busy machine
        route.fulfill(response=response)

    phone.route("**/sandbox/vk/_emulator/users/*/messages", answered_late)
    phone.goto(f"{sandbox}/sandbox/#vk")
    phone.fill("#text", "Как оплатить счёт?")
    phone.click("button[type=submit]")
    phone.wait_for_selector(".msg.me", timeout=20_000)  # the send has returned

    phone.wait_for_selector(".choices button", timeout=20_000)
    assert "bot" in (phone.locator(".msg").last.get_attribute("class") or "")  # below the question


def test_the_web_chat_tab_shows_the_brand_page_with_the_widget(sandbox: str, phone: Page) -> None:
    phone.goto(f"{sandbox}/sandbox/")
    phone.click("#tab-webchat")
    brand = phone.frame_locator("#brand")
    brand.locator("#supportbridge-chat .launcher").click()
    brand.locator("#supportbridge-chat textarea").fill("Здравствуйте")
    brand.locator("#supportbridge-chat .send").click()

    brand.locator("#supportbridge-chat .row.theirs:not(.greeting)").wait_for(timeout=20_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "sandbox-webchat.png"))
    assert phone.url.endswith("#webchat")


def test_the_telegram_channel_tab_shows_the_demo_post_and_the_customers_comment(
    sandbox: str, phone: Page
) -> None:
    phone.goto(f"{sandbox}/sandbox/")
    phone.click("#tab-telegram-channel")
    phone.wait_for_function("document.getElementById('post-text').textContent.length > 0")
    assert "Telegram channel" in phone.inner_text("#wall-title")

    phone.fill("#comment-text", "А доставка в Казань есть?")
    phone.click("#comment button[type=submit]")

    phone.wait_for_selector(".comment")
    assert phone.inner_text(".comment").endswith("А доставка в Казань есть?")
    assert phone.inner_text(".comment b") == "You"
