"""A public thread in a real browser: a customer comments under the brand's VK post in the
sandbox, the agent sees the thread marked public with its post, answers publicly, and the
answer appears under the post as the community's comment; then moves the customer to private
messages, which VK refuses (they never allowed them), and sees why. An urgent thread says so on
its page too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.bridge.web.test_web_browser import shoot, sign_in, started

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow


def comment_on_the_sandbox_post(phone: Page, base: str, tab: str, text: str) -> None:
    """The customer comments `text` under the demo post of the sandbox's `tab`, and sees it."""
    phone.goto(f"{base}/sandbox/#{tab}")
    phone.wait_for_selector("#post-text >> text=Новая коллекция")
    phone.fill("#comment-text", text)
    phone.click("#comment button[type=submit]")
    phone.wait_for_selector(f".comment >> text={text}")


def test_an_agent_answers_a_vk_comment_publicly_from_the_inbox(
    chromium: Browser, phone: Page, tmp_path: Path
) -> None:
    with started(tmp_path) as product:
        agent = sign_in(chromium, product)
        agent.wait_for_timeout(500)  # the page's live socket is open

        comment_on_the_sandbox_post(phone, product.base, "vk-wall", "Есть размер M в синем цвете?")

        agent.wait_for_selector("text=Есть размер M в синем цвете?")  # live: no reload
        row = agent.locator(".conversation-row", has_text="Есть размер M в синем цвете?")
        assert row.locator(".public-tag").count() == 1
        row.click()
        agent.wait_for_selector(".public-post >> text=Новая коллекция")
        assert agent.locator(".public-post a").get_attribute("href", timeout=1000) is not None
        assert agent.locator(".public-warning").is_visible()
        assert agent.locator(".msg.dir-inbound .public-tag").count() == 1
        assert agent.locator("input[name=reply_to]:checked").count() == 1
        agent.fill("textarea[name=text]", "Да, размер M есть в синем.")
        agent.click("button:has-text('Send publicly')")
        agent.wait_for_selector(".msg.from-agent .status-sent")  # the delivery status, live
        shoot(agent, "inbox-public-thread.png")

        phone.wait_for_selector(".comment.community >> text=Да, размер M есть в синем.")
        shoot(phone, "sandbox-vk-wall.png")

        # privately: the customer never wrote to the community, so VK refuses (901) and says why
        agent.fill("textarea[name=text]", "Напишите номер заказа, пожалуйста.")
        agent.click("button:has-text('Move to private')")
        agent.wait_for_selector(".msg.from-agent .private-tag")
        agent.wait_for_selector(".msg.from-agent .status-failed >> text=VK error 901")
        assert agent.locator(".public-warning").count() == 0
        shoot(agent, "inbox-moved-to-private.png")


def test_an_angry_comments_thread_is_marked_urgent_on_its_page(
    chromium: Browser, phone: Page, tmp_path: Path
) -> None:
    angry = "Ужасный сервис, ничего не работает, верните деньги!!!"
    with started(tmp_path) as product:
        agent = sign_in(chromium, product)
        agent.wait_for_timeout(500)  # the page's live socket is open

        comment_on_the_sandbox_post(phone, product.base, "vk-wall", angry)

        row = agent.locator(".conversation-row", has_text="Ужасный сервис")
        row.wait_for()
        row.click()
        agent.wait_for_selector(".public-post >> text=Новая коллекция")
        assert agent.locator(".thread-head .urgent-tag").inner_text() == "urgent"


def test_an_agent_answers_a_facebook_comment_publicly_then_privately_once(
    chromium: Browser, phone: Page, tmp_path: Path
) -> None:
    """The Page's post in the sandbox: the public answer appears under the comment as the
    brand's; the private reply reaches the commenter's Messenger; a second one is refused with
    Facebook's rule, before anything is sent."""
    with started(tmp_path) as product:
        agent = sign_in(chromium, product)
        agent.wait_for_timeout(500)  # the page's live socket is open

        comment_on_the_sandbox_post(phone, product.base, "facebook-post", "Доставляете в Казань?")

        agent.wait_for_selector("text=Доставляете в Казань?")  # live: no reload
        row = agent.locator(".conversation-row", has_text="Доставляете в Казань?")
        assert row.locator(".public-tag").count() == 1
        row.click()
        agent.wait_for_selector(".public-warning")
        agent.fill("textarea[name=text]", "Да, доставляем в Казань.")
        agent.click("button:has-text('Send publicly')")
        agent.wait_for_selector(".msg.from-agent .status-sent")
        shoot(agent, "inbox-facebook-public-thread.png")

        phone.wait_for_selector(".comment.community.reply >> text=Да, доставляем в Казань.")
        shoot(phone, "sandbox-facebook-post.png")

        thread = agent.url
        agent.fill("textarea[name=text]", "Напишите адрес, пожалуйста.")
        agent.click("button:has-text('Move to private')")
        agent.wait_for_selector(".msg.from-agent .private-tag")
        agent.wait_for_selector(".msg.from-agent .status-sent")

        phone.click("#tab-facebook")
        phone.wait_for_selector(".msg.bot >> text=Напишите адрес, пожалуйста.")
        shoot(phone, "sandbox-facebook-private-reply.png")

        agent.goto(thread)
        agent.fill("textarea[name=text]", "И ещё вопрос")
        agent.click("button:has-text('Move to private')")
        agent.wait_for_selector(".error >> text=already has its private reply")
        shoot(agent, "inbox-facebook-second-private-refused.png")
