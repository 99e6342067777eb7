"""Which networks are configured, and their channel objects (the one place that knows them all)."""

from __future__ import annotations

from typing import Protocol

from bridge.channel import Channel, Receiver
from bridge.domain import Network
from bridge.settings import Settings


class NetworkChannel(Channel, Receiver, Protocol):
    async def close(self) -> None: ...

    async def register_webhook(self, public_url: str) -> None: ...


def configured_networks(settings: Settings) -> list[Network]:
    return [Network.TELEGRAM] if settings.telegram_token else []


def make_channel(network: Network, settings: Settings) -> NetworkChannel:
    if network is Network.TELEGRAM and settings.telegram_token:
        from bots.telegram import TelegramChannel

        return TelegramChannel(
            settings.telegram_token,
            api_url=settings.telegram_api_url,
            webhook_secret=settings.telegram_webhook_secret,
        )
    raise ValueError(f"network {network.value} is not configured (its token setting is unset)")
