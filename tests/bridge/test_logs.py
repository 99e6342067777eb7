"""Logs: one JSON object per line on request, carrying the conversation being handled."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bridge.util.logs import about_conversation, configure


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_json_log_line_carries_the_conversation_id(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO", "json")

    with about_conversation(42):
        logging.getLogger("bridge.delivery").warning("message %d failed: %s", 7, "blocked")
    logging.getLogger("bridge.delivery").info("between conversations")

    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["conversation_id"] == 42
    assert (first["level"], first["logger"]) == ("WARNING", "bridge.delivery")
    assert first["message"] == "message 7 failed: blocked"
    assert second["conversation_id"] is None


def test_plain_logs_stay_one_readable_line(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO", "text")

    logging.getLogger("bridge").info("started")

    assert capsys.readouterr().err.rstrip().endswith("INFO bridge: started")
