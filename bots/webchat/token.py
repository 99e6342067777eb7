"""A web-chat visitor's identity: a random id, signed by the server (HMAC-SHA256), kept in the
browser's localStorage. A token that does not verify gives a new identity, never another's.

The standard library's hmac is enough: the token carries one opaque id and no expiry (a visitor
returning months later continues the same conversation), so a serialisation library would add
a dependency and nothing else.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import secrets
from pathlib import Path

from redis.asyncio import Redis

from bridge.bus import Bus
from bridge.settings import Settings

VERSION = "v1"
SECRET_FILE = "webchat.secret"
MAX_TOKEN_CHARS = 128
_VISITOR = re.compile(r"^[A-Za-z0-9_-]{22}$")


class VisitorTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the web-chat secret needs at least 16 bytes")
        self._secret = secret

    def issue(self) -> tuple[str, str]:
        """A new visitor: (visitor id, token)."""
        visitor = secrets.token_urlsafe(16)
        return visitor, f"{VERSION}.{visitor}.{self._signature(visitor)}"

    def verify(self, token: str | None) -> str | None:
        """The visitor id the token was issued for, or None if it is not one of ours."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        version, _, rest = token.partition(".")
        visitor, _, signature = rest.partition(".")
        if version != VERSION or not _VISITOR.match(visitor):
            return None
        if not hmac.compare_digest(signature.encode(), self._signature(visitor).encode()):
            return None
        return visitor

    def _signature(self, visitor: str) -> str:
        # The purpose is signed along, so the secret's HMAC of an id means nothing elsewhere.
        digest = hmac.new(self._secret, f"webchat-visitor.{VERSION}.{visitor}".encode(), "sha256")
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


async def load_secret(settings: Settings, bus: Bus) -> bytes:
    """The setting; unset, one generated once and kept where every process that serves the
    chat finds it: in Redis when the bus is Redis (several `web` processes), else in a file of
    the data directory (the embedded mode starts with one command and keeps its visitors)."""
    if settings.webchat_secret:
        return settings.webchat_secret.encode()
    from bridge.bus.redis import RedisBus

    if isinstance(bus, RedisBus):
        return await _shared_secret(bus.client, f"{bus.prefix}:webchat:secret")
    return _file_secret(settings.data_dir / SECRET_FILE)


async def _shared_secret(client: Redis, key: str) -> bytes:
    # SET NX: the first process to start chooses it, the others read the same one.
    await client.set(key, secrets.token_urlsafe(32), nx=True)
    value = await client.get(key)
    assert isinstance(value, bytes)
    return value


def _file_secret(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32).encode()
    try:
        # Readable by the owner only; O_EXCL: of two processes starting together, one writes.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret
