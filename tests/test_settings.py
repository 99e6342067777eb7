"""Settings: environment over the TOML file, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.settings import SettingsError, load_settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("SB_"):
            monkeypatch.delenv(name)
    path = tmp_path / "supportbridge.toml"
    monkeypatch.setenv("SB_CONFIG", str(path))
    return path


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
    ("variable", "value", "named"),
    [
        ("SB_HTTP_PORT", "abc", "SB_HTTP_PORT"),
        ("SB_HTTP_PORT", "70000", "SB_HTTP_PORT"),
        ("SB_DATABASE_URL", "mysql://db/x", "SB_DATABASE_URL"),
        ("SB_REDIS_URL", "http://x", "SB_REDIS_URL"),
        ("SB_AUTO_ANSWER_THRESHOLD", "1.5", "SB_AUTO_ANSWER_THRESHOLD"),
        ("SB_HANDOFF_ACK_EN", "wait {hours} h", "SB_HANDOFF_ACK_EN"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as error:
        load_settings()

    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_an_unknown_key_in_the_file_is_refused(config_file: Path) -> None:
    config_file.write_text("http_prot = 1\n")

    with pytest.raises(SettingsError, match="http_prot"):
        load_settings()


def test_broken_toml_is_refused_with_the_reason(config_file: Path) -> None:
    config_file.write_text('http_port = "8080\n')

    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings()


def test_the_command_stops_with_exit_code_2_and_one_line(tmp_path: Path) -> None:
    env = os.environ | {"SB_CONFIG": os.devnull, "SB_HTTP_PORT": "abc"}

    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "run"], env=env, capture_output=True, text=True
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("supportbridge: setting SB_HTTP_PORT")


def test_the_shipped_config_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = Path(__file__).parent.parent / "config" / "supportbridge.toml"
    monkeypatch.setenv("SB_CONFIG", str(shipped))

    assert load_settings().inbound_shards == 16
