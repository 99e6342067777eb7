"""A web-chat visitor's signed token, and where its secret comes from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bots.webchat.token import VisitorTokens
from bridge.backends.local import LocalBackend
from bridge.backends.redis import RedisBackend
from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.channel import SeenMessage
from bridge.domain import Network
from bridge.settings import Settings
from supportbridge.networks import make_webchat

SECRET = b"a-test-secret-of-enough-length"


def test_a_token_verifies_to_the_visitor_it_was_issued_for() -> None:
    tokens = VisitorTokens(SECRET)
    visitor, token = tokens.issue()
    other, _ = tokens.issue()

    assert tokens.verify(token) == visitor
    assert other != visitor


@pytest.mark.parametrize(
    "forge",
    [
        lambda visitor, token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda visitor, token: token.replace(visitor, "B" * 22),
        lambda visitor, token: token.replace("v1.", "v0.", 1),
        lambda visitor, token: f"v1.{visitor}.",
        lambda visitor, token: f"v1.{visitor}",
        lambda visitor, token: visitor,
        lambda visitor, token: token + "x" * 200,
        lambda visitor, token: "",
        lambda visitor, token: None,
    ],
    ids=[
        "signature",
        "visitor",
        "version",
        "empty-signature",
        "no-signature",
        "bare-id",
        "too-long",
        "empty",
        "none",
    ],
)
def test_a_forged_or_tampered_token_is_refused(forge: object) -> None:
    tokens = VisitorTokens(SECRET)
    visitor, token = tokens.issue()

    assert tokens.verify(forge(visitor, token)) is None  # type: ignore[operator]


def test_a_token_signed_with_another_secret_is_refused() -> None:
    _, token = VisitorTokens(b"another-secret-of-enough-length").issue()

    assert VisitorTokens(SECRET).verify(token) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        VisitorTokens(b"short")


async def test_without_the_setting_a_secret_is_generated_once_and_kept_in_the_data_directory(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(MemoryBus(1), tmp_path / "data")

    first = await backend.shared_secret("webchat")
    again = await backend.shared_secret("webchat")

    assert first == again and len(first) >= 32
    kept = tmp_path / "data" / "webchat.secret"
    assert kept.read_bytes() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # readable by the owner only


async def test_the_setting_is_the_secret_when_given(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webchat_secret="configured-secret-1234")
    backend = LocalBackend(MemoryBus(1), tmp_path)

    channel = await make_webchat(settings, backend, no_history, NoFiles())

    _, token = VisitorTokens(b"configured-secret-1234").issue()
    assert channel.tokens.verify(token) is not None
    assert not (tmp_path / "webchat.secret").exists()


@pytest.mark.redis
async def test_processes_on_one_redis_share_one_generated_secret(
    redis_url: str, redis_prefix: str
) -> None:
    first, second = (RedisBackend(RedisBus(redis_url, 1, prefix=redis_prefix)) for _ in range(2))
    try:
        secrets = [await backend.shared_secret("webchat") for backend in (first, second)]
    finally:
        await first.close()
        await second.close()

    assert secrets[0] == secrets[1] and len(secrets[0]) >= 32


async def no_history(network: Network, chat_id: str, limit: int) -> list[SeenMessage]:
    return []


class NoFiles:
    async def keep(self, key: str, content: bytes) -> None:
        raise AssertionError("no file is sent in these tests")

    async def load(self, key: str) -> bytes:
        raise LookupError(key)
