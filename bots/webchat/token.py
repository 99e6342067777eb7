"""A web-chat visitor's identity: a random id and the time the token was issued, signed by the
server (HMAC-SHA256), kept in the browser's localStorage. A token that does not verify gives a
new identity, never another's.

A token is valid for `max_age_days` after it was issued, and a visitor who comes back gets it
renewed (`renew`), so a visitor returning within that time continues the same conversation,
while a token copied from a browser long abandoned opens nothing. The standard library's hmac is
enough: the token carries one opaque id and one time, so a serialisation library would add a
dependency and nothing else.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Callable

# v1 carried no issue time: such a token no longer verifies (its visitor starts anew).
VERSION = "v2"
MAX_TOKEN_CHARS = 128
DEFAULT_MAX_AGE_DAYS = 180
# A token is renewed once a day at most: the widget need not store a new one on every visit.
RENEW_AFTER_S = 24 * 3600
_VISITOR = re.compile(r"^[A-Za-z0-9_-]{22}$")
_ISSUED = re.compile(r"^[0-9]{1,12}$")


class VisitorTokens:
    def __init__(
        self,
        secret: bytes,
        max_age_days: int = DEFAULT_MAX_AGE_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the web-chat secret needs at least 16 bytes")
        self._secret = secret
        self.max_age_s = max_age_days * 24 * 3600
        self._clock = clock

    def issue(self) -> tuple[str, str]:
        """A new visitor: (visitor id, token)."""
        visitor = secrets.token_urlsafe(16)
        return visitor, self._token(visitor)

    def verify(self, token: str | None) -> str | None:
        """The visitor id the token was issued for, or None if it is not one of ours or it is
        older than the maximum age."""
        found = self._read(token)
        return found[0] if found is not None else None

    def renew(self, token: str | None) -> tuple[str, str] | None:
        """(visitor id, the token to keep) for a valid token: the same token while it is young,
        a new one for the same visitor once it is a day old; None as `verify`."""
        found = self._read(token)
        if found is None or token is None:
            return None
        visitor, issued = found
        if self._clock() - issued < RENEW_AFTER_S:
            return visitor, token
        return visitor, self._token(visitor)

    def _read(self, token: str | None) -> tuple[str, int] | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        parts = token.split(".")
        if len(parts) != 4:
            return None
        version, visitor, issued, signature = parts
        if version != VERSION or not _VISITOR.match(visitor) or not _ISSUED.match(issued):
            return None
        expected = self._signature(visitor, issued)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        if self._clock() - int(issued) > self.max_age_s:
            return None
        return visitor, int(issued)

    def file_signature(self, visitor: str, key: str, name: str) -> str:
        """The signature of a link to the file kept under `key`, named `name`, given to
        `visitor` with a reply: only the links the server gave out open a file."""
        # the purpose first, the one free-form part (the name) last: no two links sign alike
        signed = f"webchat-file\n{visitor}\n{key}\n{name}".encode()
        digest = hmac.new(self._secret, signed, "sha256")
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()

    def _token(self, visitor: str) -> str:
        issued = str(int(self._clock()))
        return f"{VERSION}.{visitor}.{issued}.{self._signature(visitor, issued)}"

    def _signature(self, visitor: str, issued: str) -> str:
        # The purpose is signed along, so the secret's HMAC of an id means nothing elsewhere.
        signed = f"webchat-visitor.{VERSION}.{visitor}.{issued}".encode()
        digest = hmac.new(self._secret, signed, "sha256")
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
