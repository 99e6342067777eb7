"""The production deployment file: docker-compose validates it (no Docker engine runs here, so the
file is checked, not run) and it keeps the promises the README makes."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import IN_CI, REPO

ROOT = REPO
ROLES = [
    "migrate",
    "core",
    "web",
    "bot-telegram",
    "bot-vk",
    "bot-facebook",
    "bot-instagram",
]


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker-compose config`: the file as Compose reads it, with .env.example as the .env."""
    if shutil.which("docker-compose") is None:
        message = "docker-compose is not installed (apt-get install docker-compose)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    folder = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", folder)
    shutil.copy(ROOT / ".env.example", folder / ".env")
    profiles = [arg for name in ("telegram", "vk", "facebook") for arg in ("--profile", name)]
    result = subprocess.run(
        ["docker-compose", *profiles, "config"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


def test_compose_has_every_role_and_its_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", *ROLES}


def test_redis_keeps_the_streams_on_disk(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert compose["services"]["redis"]["volumes"]


def test_every_long_running_role_has_a_health_check(compose: dict[str, Any]) -> None:
    for role in ROLES[1:]:
        assert "readyz" in " ".join(compose["services"][role]["healthcheck"]["test"]), role


def test_core_can_be_scaled(compose: dict[str, Any]) -> None:
    """No fixed host port or container name: `--scale core=N` starts N of them."""
    core = compose["services"]["core"]
    assert "ports" not in core and "container_name" not in core


def test_roles_wait_for_the_migration(compose: dict[str, Any]) -> None:
    for role in ROLES[1:]:
        condition = compose["services"][role]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", role


def test_configuration_is_by_environment(compose: dict[str, Any]) -> None:
    environment = compose["services"]["core"]["environment"]
    assert environment["SB_DATABASE_URL"].startswith("postgresql+asyncpg://supportbridge:")
    assert environment["SB_REDIS_URL"] == "redis://redis:6379/0"
