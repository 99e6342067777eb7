"""A web-chat visitor's signed token, and where its secret comes from."""

from __future__ import annotations

import base64
import hmac
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bots.webchat.token import VERSION, VisitorTokens
from bridge.backends.local import LocalBackend
from bridge.backends.redis import RedisBackend
from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.channel import SeenMessage
from bridge.domain import Network
from bridge.settings import Settings
from supportbridge.networks import make_webchat

SECRET = b"a-test-secret-of-enough-length"
DAY = 24 * 3600


def days_ago(days: float) -> Callable[[], float]:
    """A clock `days` behind this one."""
    return lambda: time.time() - days * DAY


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
        lambda visitor, token: token.replace(f"{VERSION}.", "v0.", 1),
        lambda visitor, token: token.rsplit(".", 1)[0] + ".",
        lambda visitor, token: token.rsplit(".", 1)[0],
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


def test_a_token_older_than_the_maximum_age_is_refused() -> None:
    _, token = VisitorTokens(SECRET, clock=days_ago(181)).issue()

    assert VisitorTokens(SECRET, max_age_days=180).verify(token) is None


def test_a_token_within_the_maximum_age_verifies() -> None:
    visitor, token = VisitorTokens(SECRET, clock=days_ago(179)).issue()

    assert VisitorTokens(SECRET, max_age_days=180).verify(token) == visitor


def test_a_returning_visitors_day_old_token_is_renewed_for_the_same_visitor() -> None:
    visitor, old = VisitorTokens(SECRET, clock=days_ago(2)).issue()
    tokens = VisitorTokens(SECRET, max_age_days=180)

    renewed = tokens.renew(old)

    assert renewed is not None and renewed[0] == visitor and renewed[1] != old
    later = VisitorTokens(SECRET, max_age_days=180, clock=days_ago(-179))
    assert later.verify(renewed[1]) == visitor and later.verify(old) is None


def test_a_token_issued_today_is_kept_as_it_is() -> None:
    tokens = VisitorTokens(SECRET)
    visitor, token = tokens.issue()

    assert tokens.renew(token) == (visitor, token)


def test_a_token_of_the_first_format_which_carries_no_time_is_refused() -> None:
    visitor = "A" * 22
    digest = hmac.new(SECRET, f"webchat-visitor.v1.{visitor}".encode(), "sha256").digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    assert VisitorTokens(SECRET).verify(f"v1.{visitor}.{signature}") is None


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

    async def kept_bytes(self, prefix: str) -> int:
        return 0

    async def load(self, key: str) -> bytes:
        raise LookupError(key)
