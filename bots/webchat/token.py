"""A web-chat visitor's identity: a random id, signed by the server (HMAC-SHA256), kept in the
browser's localStorage. A token that does not verify gives a new identity, never another's.

The standard library's hmac is enough: the token carries one opaque id and no expiry (a visitor
returning months later continues the same conversation), so a serialisation library would add
a dependency and nothing else.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets

VERSION = "v1"
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
