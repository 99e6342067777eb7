"""The web-chat widget in a real browser, on the sandbox's demo brand page (one script tag): a
visitor on a phone writes and sees the bot's answer, answers "did this help?", comes back to the
same conversation; customer text never runs as code; on a desktop it is a panel beside the page.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Locator, Page

from tests.conftest import PHONE, SCREENSHOTS

pytestmark = pytest.mark.slow
TAP = 44  # the smallest comfortable touch target, in CSS pixels


def open_chat(page: Page, base: str) -> Locator:
    page.goto(f"{base}/sandbox/webchat/")
    chat = page.locator("#supportbridge-chat")
    chat.locator(".launcher").click()
    chat.locator(".status", has_text="Обычно отвечаем").or_(
        chat.locator(".status", has_text="We usually answer")
    ).wait_for(timeout=10_000)
    return chat


def write(chat: Locator, text: str) -> None:
    chat.locator("textarea").fill(text)
    chat.locator(".send").click()


def replies(chat: Locator) -> Locator:
    return chat.locator(".row.theirs:not(.greeting) .bubble")


def test_a_visitor_on_a_phone_writes_sees_the_answer_and_comes_back_to_the_same_conversation(
    sandbox: str, phone: Page
) -> None:
    phone.goto(f"{sandbox}/sandbox/webchat/")
    launcher = phone.locator("#supportbridge-chat .launcher")
    box = launcher.bounding_box()
    assert box is not None and box["width"] >= TAP and box["y"] + box["height"] < PHONE["height"]
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "webchat-phone-brand-page.png"))

    chat = open_chat(phone, sandbox)
    panel = chat.locator(".panel").bounding_box()
    assert panel == {"x": 0, "y": 0, **PHONE}  # full screen on a phone
    for control in (".close", ".send", "textarea"):
        box = chat.locator(control).bounding_box()
        assert box is not None and box["height"] >= TAP, control

    write(chat, "Не работает интернет")
    replies(chat).first.wait_for(timeout=20_000)
    assert replies(chat).first.inner_text().startswith("Давайте проверим по шагам")
    choices = chat.locator(".choice")
    assert choices.all_inner_texts() == ["Да, спасибо", "Нет, нужен человек"]
    assert all((b := c.bounding_box()) and b["height"] >= TAP for c in choices.all())
    phone.screenshot(path=str(SCREENSHOTS / "webchat-phone-answer.png"))

    choices.filter(has_text="Да, спасибо").click()
    replies(chat).filter(has_text="Рады помочь").wait_for(timeout=20_000)
    assert chat.locator(".choice").count() == 0
    phone.screenshot(path=str(SCREENSHOTS / "webchat-phone-helped.png"))

    phone.reload()
    chat = open_chat(phone, sandbox)
    replies(chat).filter(has_text="Рады помочь").wait_for(timeout=10_000)
    texts = chat.locator(".bubble").all_inner_texts()
    assert texts[0] == "Не работает интернет"
    assert texts[-2:] == ["Да, спасибо", "Рады помочь! Пишите в любое время."]


def test_a_visitor_on_a_phone_sends_a_photo_which_is_scaled_down_and_kept(
    sandbox: str, sandbox_dir: Path, phone: Page, tmp_path: Path
) -> None:
    camera = Image.new("RGB", (4000, 3000), "#e9e4da")
    ImageDraw.Draw(camera).rectangle((800, 1200, 3200, 1800), fill="#222")
    shot = tmp_path / "IMG_2041.png"
    camera.save(shot)
    chat = open_chat(phone, sandbox)

    chat.locator("input[type=file]").set_input_files(str(shot))
    sent = chat.locator(".row.mine .file", has_text="IMG_2041.jpg")
    sent.wait_for(timeout=10_000)
    chat.locator(".row.mine:not(.pending)").first.wait_for(timeout=10_000)  # acknowledged
    phone.screenshot(path=str(SCREENSHOTS / "webchat-phone-photo.png"))

    # acknowledged means in the durable inbound queue: the pipeline stores it a moment later
    deadline = time.monotonic() + 20
    while not (stored := _stored_photo(sandbox_dir / "supportbridge.db")):
        assert time.monotonic() < deadline, "the photo was acknowledged but never stored"
        time.sleep(0.1)
    attachment, content = stored
    name = attachment["name"]
    kept = Image.open(io.BytesIO(content))
    assert (name, kept.format, kept.size) == ("IMG_2041.jpg", "JPEG", (1600, 1200))
    attach = chat.locator(".attach").bounding_box()
    assert attach is not None and attach["height"] >= TAP


def _stored_photo(path: Path) -> tuple[dict[str, str], bytes] | None:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT attachments FROM messages WHERE direction = 'inbound'"
            " AND attachments LIKE '%IMG_2041%'"
        ).fetchone()
        kept = db.execute("SELECT content FROM kept_files").fetchone()
    if row is None or kept is None:
        return None
    [attachment] = json.loads(row[0])
    return attachment, kept[0]


ATTACKS = [
    "<img src=x onerror=\"window.__pwned='img'\">",
    "<script>window.__pwned='script'</script>",
    "<svg onload=\"window.__pwned='svg'\"></svg>",
    '"><iframe src="javascript:window.parent.__pwned=\'iframe\'"></iframe>',
]


def test_an_xss_payload_written_by_the_visitor_is_shown_as_text_and_runs_nothing(
    sandbox: str, phone: Page
) -> None:
    chat = open_chat(phone, sandbox)
    for attack in ATTACKS:
        write(chat, attack)
    replies(chat).first.wait_for(timeout=20_000)  # through the pipeline and back
    phone.reload()
    chat = open_chat(phone, sandbox)  # and from the stored history
    chat.locator(".row.mine").nth(len(ATTACKS) - 1).wait_for(timeout=10_000)

    assert chat.locator(".row.mine .bubble").all_inner_texts() == ATTACKS
    assert chat.locator(".log img, .log script, .log svg, .log iframe").count() == 0
    assert phone.evaluate("window.__pwned") is None


def test_on_a_desktop_the_chat_is_a_panel_beside_the_page_in_the_browsers_language(
    sandbox: str, chromium: Browser
) -> None:
    page = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="en-US").new_page()
    chat = open_chat(page, sandbox)
    panel = chat.locator(".panel").bounding_box()
    assert panel is not None and panel["width"] == 380 and panel["x"] > 800

    write(chat, "How do I pay the bill?")
    replies(chat).first.wait_for(timeout=20_000)
    assert replies(chat).first.inner_text().startswith("You can pay")
    assert chat.locator(".choice").all_inner_texts() == ["Yes, thanks", "No, I need a person"]
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat-desktop.png"))
