"""What strangers may do through the web chat, per client address and all together: become new
visitors, send messages, send file bytes, and the day's room for files (the storage quota).

The counters are the backend's rate limiter (GCRA: in this process in the embedded mode, in Redis
in the distributed one, so every `web` process counts together). A refusal is a FrameError with
a code the widget shows and the seconds after which the same frame would be taken. An hourly
allowance may be spent a sixth at once (a burst of visitors when a newsletter goes out), then it
refills evenly; the daily quota may be spent at once.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web
from redis.exceptions import RedisError

from bots.webchat.protocol import FrameError
from bridge.channel import Limit

log = logging.getLogger(__name__)

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
MB = 1024 * 1024
BURST_SHARE = 6  # of an hourly allowance, what may be spent at once: ten minutes' worth
# One subscriber gets a /64 of IPv6 addresses: counted per address, each would be a new visitor.
IPV6_PREFIX = 64


class Limiter(Protocol):
    """The backend's rate limiter (`bridge.delivery.ratelimit.RateLimiter`)."""

    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        """Take one use of every limit if all allow it (0), else the seconds to wait."""
        ...


class LimitSettings(Protocol):
    """The settings the web chat's limits are read from (`bridge.settings.Settings`)."""

    webchat_trusted_proxies: list[str]
    webchat_new_visitors_per_address_per_hour: int
    webchat_new_visitors_per_hour: int
    webchat_messages_per_address_per_hour: int
    webchat_messages_per_hour: int
    webchat_file_mb_per_address_per_hour: int
    webchat_file_mb_per_hour: int
    webchat_file_mb_per_day: int


class Gate:
    """Takes a stranger's new identity, message or file through the limits, or refuses it."""

    def __init__(self, limiter: Limiter, settings: LimitSettings) -> None:
        self.limiter = limiter
        self.settings = settings
        self.proxies = [
            ipaddress.ip_network(p, strict=False) for p in settings.webchat_trusted_proxies
        ]
        self._told_of_proxy = False

    def address(self, request: web.Request) -> str:
        """The visitor's address as the limits count it: the connection's, or, when that is a
        trusted proxy, the nearest address in X-Forwarded-For that is not one (the entries
        further left are the client's own word)."""
        hop = _ip(request.remote or "")
        forwarded = [
            entry.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for entry in header.split(",")
        ]
        if forwarded and not self.proxies and not self._told_of_proxy:
            self._told_of_proxy = True
            log.warning(
                "webchat: a connection from %s names X-Forwarded-For, which is ignored while "
                "webchat_trusted_proxies is empty: behind a proxy, every visitor counts as its "
                "address",
                request.remote,
            )
        while hop is not None and forwarded and any(hop in net for net in self.proxies):
            sender = _ip(forwarded.pop())
            if sender is None:
                break  # garbled: the last address known stands for the visitor
            hop = sender
        if hop is None:
            return "unknown"
        if isinstance(hop, ipaddress.IPv6Address):
            return str(ipaddress.ip_network(f"{hop}/{IPV6_PREFIX}", strict=False))
        return str(hop)

    async def new_visitor(self, address: str) -> None:
        s = self.settings
        await self._take(
            _hourly(f"webchat-new:{address}", s.webchat_new_visitors_per_address_per_hour),
            "too_many_visitors",
            "too many new chats from your network; try again in {wait}",
        )
        await self._take(
            _hourly("webchat-new", s.webchat_new_visitors_per_hour),
            "busy",
            "the chat takes no new visitors now; try again in {wait}",
        )

    async def message(self, address: str, client_id: str) -> None:
        s = self.settings
        await self._take(
            _hourly(f"webchat-messages:{address}", s.webchat_messages_per_address_per_hour),
            "too_fast",
            "too many messages from your network; send it again in {wait}",
            client_id,
        )
        await self._take(
            _hourly("webchat-messages", s.webchat_messages_per_hour),
            "busy",
            "the chat is busy; send it again in {wait}",
            client_id,
        )

    async def file(self, address: str, size: int, client_id: str) -> None:
        s = self.settings
        per_address = s.webchat_file_mb_per_address_per_hour * MB
        await self._take(
            _bytes(
                f"webchat-bytes:{address}", per_address / HOUR_S, per_address / BURST_SHARE, size
            ),
            "too_many_files",
            "too many files from your network; send it again in {wait}",
            client_id,
        )
        overall = s.webchat_file_mb_per_hour * MB
        await self._take(
            _bytes("webchat-bytes", overall / HOUR_S, overall / BURST_SHARE, size),
            "busy",
            "the chat takes no more files now; send it again in {wait}",
            client_id,
        )
        quota = s.webchat_file_mb_per_day * MB
        await self._take(
            _bytes("webchat-bytes-day", quota / DAY_S, quota, size),
            "file_quota",
            f"today's room for visitors' files ({s.webchat_file_mb_per_day} MB) is used up; "
            "send it again in {wait}, or describe it in a message",
            client_id,
        )

    async def _take(
        self, limit: Limit, code: str, reason: str, client_id: str | None = None
    ) -> None:
        try:
            wait = await self.limiter.try_acquire([limit])
        except (RedisError, OSError) as exc:
            log.warning("webchat: limits unavailable: %s", exc)
            raise FrameError("unavailable", "not accepted now; send it again", client_id) from None
        if wait > 0:
            raise FrameError(code, reason.format(wait=_duration(wait)), client_id, retry_after=wait)


def _hourly(key: str, per_hour: int) -> Limit:
    return Limit(key, per_hour / HOUR_S, burst=max(1, per_hour // BURST_SHARE))


def _bytes(key: str, per_second: float, burst: float, size: int) -> Limit:
    """A limit on bytes, `size` of them now. The limiter counts uses, so this use is the whole
    file: its interval is the file's share of the rate, its burst counted in files of this size
    (rounded down, so the allowance is kept to within one file)."""
    size = max(size, 1)
    return Limit(key, per_second / size, burst=max(1, int(burst // size)))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} min"
    return f"{math.ceil(seconds / HOUR_S)} h"
