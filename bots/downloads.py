"""Downloading a file a customer sent from where their network serves it, and from nowhere else.

The address comes in an event (Messenger's webhook, VK's messages.getById), and whoever can sign
or forge one must not make the product fetch its own or its neighbours' pages. So an address is
fetched only when it is under the network's configured API base, as configured (the emulator, a
local API server), or over https from a host whose every address is public (the networks' own
file hosts are). Names are checked as the connection resolves them, so the address connected to
is the one checked; a redirect is checked as a new address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bridge.channel import MAX_FILE_BYTES

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052).
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(OSError):
    """An address files are not fetched from (an OSError: the connector reports it as the
    resolver's failure)."""


def not_public(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address (loopback, private, ...), or None when it is one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo or (None, None))[1]
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(ip.packed[-4:])
        if embedded is not None:
            return not_public(embedded)
    # the most telling first: 0.0.0.0 and 169.254.169.254 are "private" as well
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "not global"


class PublicOnly(AbstractResolver):
    """Resolves a name as `inner` does, and refuses it when any of its addresses is not public:
    one that answers with a private address among public ones is not a file host."""

    def __init__(self, inner: AbstractResolver) -> None:
        self.inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        for result in found:
            why = not_public(ipaddress.ip_address(result["host"].partition("%")[0]))
            if why is not None:
                raise AddressRefused(f"{host} resolves to {result['host']} ({why})")
        return found

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True, slots=True)
class _Base:
    """The configured API base: its origin, and the path everything of it is under."""

    origin: URL
    path: str

    @classmethod
    def of(cls, api_url: str) -> _Base:
        url = URL(api_url)
        return cls(url.origin(), url.path.rstrip("/") + "/")

    def holds(self, url: URL) -> bool:
        segments = url.path.split("/")
        return (
            url.origin() == self.origin
            and (url.path + "/").startswith(self.path)
            and "." not in segments
            and ".." not in segments
        )


class Downloads:
    """Fetches the files of one network's customers (see the module's text). `resolver` resolves
    names (the system's, by default)."""

    def __init__(
        self,
        api_url: str | None,
        *,
        timeout_s: float,
        max_bytes: int = MAX_FILE_BYTES,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.base = _Base.of(api_url) if api_url else None
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._resolver = resolver
        self._configured: aiohttp.ClientSession | None = None
        self._public: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for session in (self._configured, self._public):
            if session is not None:
                await session.close()
        self._configured = self._public = None

    async def fetch(self, url: str) -> bytes:
        """The file at `url`. LookupError, with the reason, when the address is not one files
        are fetched from, the server does not hand the file over or it is larger than
        `max_bytes`; TimeoutError past `timeout_s` (redirects included); transport errors
        propagate."""
        async with asyncio.timeout(self.timeout_s):
            try:
                target = URL(url)
                for _ in range(MAX_REDIRECTS + 1):
                    session = self._session_for(target)
                    async with session.get(target, allow_redirects=False) as response:
                        location = response.headers.get("Location")
                        if response.status in REDIRECTS and location:
                            target = target.join(URL(location))
                            continue
                        return await self._content(response)
            except ValueError as exc:  # yarl's word on an address that is none
                raise LookupError(f"not a file address: {exc}") from None
            except AddressRefused as exc:
                raise LookupError(_refused(str(exc))) from None
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):
                    raise LookupError(_refused(str(exc.os_error))) from None
                raise
        raise LookupError(f"the file server redirected more than {MAX_REDIRECTS} times")

    def _session_for(self, url: URL) -> aiohttp.ClientSession:
        if self.base is not None and self.base.holds(url):
            if self._configured is None:
                self._configured = aiohttp.ClientSession()
            return self._configured
        host = url.raw_host or ""
        try:
            literal = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            literal = None  # a name: the connector's resolver checks what it resolves to
        why = not_public(literal) if literal is not None else None
        if why is not None:
            raise AddressRefused(f"{host} is {why}")
        if url.scheme != "https":
            raise AddressRefused(f"{url.scheme}://{host} is not https")
        if self._public is None:
            resolver = PublicOnly(self._resolver or DefaultResolver())
            self._public = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
        return self._public

    async def _content(self, response: aiohttp.ClientResponse) -> bytes:
        if response.status != 200:
            raise LookupError(f"the file server answered {response.status}")
        too_large = f"the file is larger than {self.max_bytes} bytes"
        if (response.content_length or 0) > self.max_bytes:
            raise LookupError(too_large)
        content = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            content += chunk
            if len(content) > self.max_bytes:
                raise LookupError(too_large)
        return bytes(content)


def _refused(why: str) -> str:
    return (
        f"not fetched: {why}; files are fetched over https from public addresses, or from the "
        "network's configured API address"
    )
