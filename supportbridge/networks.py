"""Which networks are configured, and their channel objects (the one place that knows them all)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bridge.backends import Backend
from bridge.channel import Channel, CustomerHistory, FileKeeper, Receiver
from bridge.domain import Network
from bridge.settings import Settings

if TYPE_CHECKING:
    from bots.webchat import WebChatChannel


class NetworkChannel(Channel, Receiver, Protocol):
    async def close(self) -> None: ...

    async def register_webhook(self, public_url: str) -> None: ...


def configured_networks(settings: Settings) -> list[Network]:
    configured = {
        Network.TELEGRAM: settings.telegram_token,
        Network.VK: settings.vk_token and settings.vk_group_id,
        Network.FACEBOOK: settings.facebook_page_token,
        Network.INSTAGRAM: settings.instagram_page_token,
    }
    return [network for network, token in configured.items() if token]


def make_channel(
    network: Network, settings: Settings, files: FileKeeper | None = None
) -> NetworkChannel:
    """The channel of a configured network; `files` keeps the files agents send until they are
    sent, and those customers send where the network keeps them only for a while (Messenger,
    Instagram)."""
    if network is Network.TELEGRAM and settings.telegram_token:
        from bots.telegram import TelegramChannel

        return TelegramChannel(
            settings.telegram_token,
            api_url=settings.telegram_api_url,
            webhook_secret=settings.telegram_webhook_secret,
            files=files,
        )
    if network is Network.VK and settings.vk_token and settings.vk_group_id:
        from bots.vk.channel import VkChannel

        return VkChannel(
            settings.vk_token,
            settings.vk_group_id,
            api_url=settings.vk_api_url,
            callback_secret=settings.vk_callback_secret,
            confirmation=settings.vk_confirmation,
            files=files,
        )
    if network is Network.FACEBOOK and settings.facebook_page_token:
        from bots.facebook.channel import FacebookChannel

        return FacebookChannel(
            settings.facebook_page_token,
            app_secret=settings.facebook_app_secret or "",
            verify_token=settings.facebook_verify_token or "",
            api_url=settings.facebook_api_url,
            files=files,
        )
    if network is Network.INSTAGRAM and settings.instagram_page_token:
        from bots.instagram import InstagramChannel

        return InstagramChannel(
            settings.instagram_page_token,
            app_secret=settings.instagram_app_secret or "",
            verify_token=settings.instagram_verify_token or "",
            api_url=settings.instagram_api_url,
            files=files,
        )
    raise ValueError(f"network {network.value} is not configured (its token setting is unset)")


async def make_webchat(
    settings: Settings, backend: Backend, history: CustomerHistory, files: FileKeeper
) -> WebChatChannel:
    """The web chat needs no account anywhere: every product has it. It shows a returning
    visitor the conversation's `history`, keeps the files visitors send in `files`, and reaches
    a visitor's socket through the backend's broadcast, whichever process holds it. Visitors'
    tokens are signed with the setting, or else with a secret generated once and kept by the
    backend where every process finds it."""
    from bots.webchat import WebChatChannel
    from bots.webchat.limits import Gate
    from bots.webchat.token import VisitorTokens

    secret = settings.webchat_secret
    key = secret.encode() if secret else await backend.shared_secret("webchat")
    tokens = VisitorTokens(key, settings.webchat_token_days)
    broadcast = backend.broadcast("webchat")
    gate = Gate(backend.rate_limiter(), settings)  # limits shared by every `web` process
    return WebChatChannel(
        history,
        files,
        tokens,
        broadcast,
        settings.webchat_origins,
        gate=gate,
        storage_bytes=settings.webchat_file_storage_mb * 1024**2,
    )
