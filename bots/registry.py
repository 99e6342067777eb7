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
    configured = {
        Network.TELEGRAM: settings.telegram_token,
        Network.VK: settings.vk_token and settings.vk_group_id,
        Network.FACEBOOK: settings.facebook_page_token,
    }
    return [network for network, token in configured.items() if token]


def make_channel(network: Network, settings: Settings) -> NetworkChannel:
    if network is Network.TELEGRAM and settings.telegram_token:
        from bots.telegram import TelegramChannel

        return TelegramChannel(
            settings.telegram_token,
            api_url=settings.telegram_api_url,
            webhook_secret=settings.telegram_webhook_secret,
        )
    if network is Network.VK and settings.vk_token and settings.vk_group_id:
        from bots.vk.channel import VkChannel

        return VkChannel(
            settings.vk_token,
            settings.vk_group_id,
            api_url=settings.vk_api_url,
            callback_secret=settings.vk_callback_secret,
            confirmation=settings.vk_confirmation,
        )
    if network is Network.FACEBOOK and settings.facebook_page_token:
        from bots.facebook.channel import FacebookChannel

        return FacebookChannel(
            settings.facebook_page_token,
            app_secret=settings.facebook_app_secret or "",
            verify_token=settings.facebook_verify_token or "",
            api_url=settings.facebook_api_url,
        )
    raise ValueError(f"network {network.value} is not configured (its token setting is unset)")
