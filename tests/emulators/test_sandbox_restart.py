"""The sandbox started again on the same data directory: the product still knows what it stored
before, so the emulators must not hand out the same message ids again (new customers' messages
would be dropped as duplicates, as ghost conversations appeared)."""

from __future__ import annotations

import time

from bridge.domain import Network
from emulators.sandbox.app import Sandbox

EVERY_NETWORK = [Network.TELEGRAM, Network.VK, Network.FACEBOOK, Network.INSTAGRAM]


def first_messages(sandbox: Sandbox) -> tuple[int, int, str, str]:
    assert sandbox.telegram and sandbox.vk and sandbox.facebook and sandbox.instagram
    return (
        int(sandbox.telegram.write_text(5, "hello")["message_id"]),
        int(sandbox.vk.write(5, "hello")["id"]),
        sandbox.facebook.write_text("5", "hello"),
        sandbox.instagram.write_text("5", "hello"),
    )


def test_a_restarted_sandbox_never_repeats_the_message_ids_of_the_last_run() -> None:
    before = first_messages(Sandbox(EVERY_NETWORK))
    time.sleep(0.01)
    after = first_messages(Sandbox(EVERY_NETWORK))

    assert [b != a for b, a in zip(before, after, strict=True)] == [True, True, True, True]
    assert after[0] > before[0] and after[1] > before[1], "ids go on growing"
