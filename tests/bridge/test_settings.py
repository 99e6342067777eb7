"""Settings: environment over the TOML file, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.settings import Settings, SettingsError, load_settings
from tests.conftest import REPO


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SB_CONFIG points at this (not yet written) file; no other SB_* variable is set."""
    for name in list(os.environ):
        if name.startswith("SB_"):
            monkeypatch.delenv(name)
    path = tmp_path / "supportbridge.toml"
    monkeypatch.setenv("SB_CONFIG", str(path))
    return path


def settings_error() -> str:
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "\n" not in message
    return message


def test_built_in_defaults_apply_without_a_file(config_file: Path) -> None:
    settings = load_settings()

    assert settings.http_port == 8080
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert not settings.distributed


def test_the_file_sets_values(config_file: Path) -> None:
    config_file.write_text('http_port = 9001\nredis_url = "redis://127.0.0.1:6379/2"\n')

    settings = load_settings()

    assert (settings.http_port, settings.redis_url) == (9001, "redis://127.0.0.1:6379/2")
    assert settings.distributed


def test_environment_overrides_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("http_port = 9001\n")
    monkeypatch.setenv("SB_HTTP_PORT", "9002")

    assert load_settings().http_port == 9002


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SB_HTTP_PORT", "abc", "valid integer"),
        ("SB_HTTP_PORT", "70000", "less than or equal to 65535"),
        ("SB_DATABASE_URL", "mysql://db/x", "must start with sqlite+aiosqlite://"),
        ("SB_REDIS_URL", "http://x", "must start with redis://"),
        ("SB_AUTO_ANSWER_THRESHOLD", "1.5", "less than or equal to 1"),
        ("SB_WEBCHAT_ORIGINS", '["shop.example.com"]', "is not an origin like https://"),
        ("SB_WEBCHAT_ORIGINS", '["https://shop.example.com/chat"]', "an origin has no path"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting_and_the_reason(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)

    message = settings_error()

    assert variable in message
    assert reason in message


def test_web_chat_origins_are_kept_as_browsers_send_them(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SB_WEBCHAT_ORIGINS", '["https://Shop.Example.com/", "http://127.0.0.1:8000"]'
    )

    assert load_settings().webchat_origins == ["https://shop.example.com", "http://127.0.0.1:8000"]


def test_a_bad_value_in_the_file_names_the_setting(config_file: Path) -> None:
    config_file.write_text('http_port = "abc"\n')

    assert "SB_HTTP_PORT" in settings_error()


def test_an_unknown_key_in_the_file_is_refused_naming_the_key_and_the_file(
    config_file: Path,
) -> None:
    config_file.write_text("http_prot = 1\n")

    message = settings_error()

    assert "unknown setting 'http_prot'" in message
    assert str(config_file) in message


@pytest.mark.parametrize(
    "content", [b'http_port = "8080\n', b'http_port = "\xff"\n'], ids=["syntax", "not utf-8"]
)
def test_a_broken_file_is_refused_naming_the_file(config_file: Path, content: bytes) -> None:
    config_file.write_bytes(content)

    message = settings_error()

    assert "not valid TOML" in message
    assert str(config_file) in message


@pytest.mark.parametrize(
    "template",
    ["wait {hours} h", "wait {} min", "wait {0} min", "{minutes[0]}", "{minutes.real}", "{minutes"],
)
def test_the_handoff_acknowledgement_refuses_placeholders_other_than_minutes(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    monkeypatch.setenv("SB_HANDOFF_ACK_RU", template)

    message = settings_error()

    assert "SB_HANDOFF_ACK_RU" in message
    assert "only the placeholder {minutes} is allowed" in message


@pytest.mark.parametrize("template", ["within {minutes} min {{sic}}", "no wait given"])
def test_the_handoff_acknowledgement_takes_minutes_and_escaped_braces(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    monkeypatch.setenv("SB_HANDOFF_ACK_EN", template)

    assert load_settings().handoff_ack_en == template


def test_the_command_stops_with_exit_code_2_and_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SB_")} | {
        "SB_CONFIG": str(tmp_path / "absent.toml"),
        "SB_DATA_DIR": str(tmp_path),
        "SB_HTTP_PORT": "abc",
    }

    result = subprocess.run(
        [Path(sys.executable).with_name("supportbridge"), "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("supportbridge: setting SB_HTTP_PORT")


def test_the_shipped_config_file_is_valid(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = REPO / "config" / "supportbridge.toml"
    monkeypatch.setenv("SB_CONFIG", str(shipped))

    assert load_settings().inbound_shards == 16


def test_a_config_naming_the_responder_by_its_former_module_still_loads() -> None:
    settings = Settings(responder="bridge.kb_responder:knowledge_responder")
    assert settings.responder == "bridge.knowledge.responder:knowledge_responder"
