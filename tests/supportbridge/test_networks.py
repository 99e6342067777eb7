"""The table of networks: a network is configured by its token setting, and its channel is made
from its own settings."""

from __future__ import annotations

import pytest

from bots.instagram import InstagramChannel
from bots.instagram.channel import WEBHOOK_PATH
from bridge.domain import Network
from bridge.settings import Settings
from supportbridge.networks import configured_networks, make_channel


def test_instagram_is_configured_by_its_page_token_and_its_channel_uses_its_own_settings() -> None:
    settings = Settings(
        instagram_page_token="EAAB-ig-page-token",
        instagram_app_secret="ig-app-secret",
        instagram_verify_token="ig-verify",
        instagram_api_url="http://127.0.0.1:9/graph",
    )

    channel = make_channel(Network.INSTAGRAM, settings)

    assert configured_networks(settings) == [Network.INSTAGRAM]
    assert isinstance(channel, InstagramChannel)
    assert channel.messages_url == "http://127.0.0.1:9/graph/v19.0/me/messages"
    assert [route.path for route in channel.webhook_routes(_nowhere)] == [WEBHOOK_PATH] * 2


def test_instagram_without_its_secrets_refuses_to_start() -> None:
    settings = Settings(instagram_page_token="EAAB-ig-page-token")

    with pytest.raises(ValueError, match="Instagram needs a page token, an app secret"):
        make_channel(Network.INSTAGRAM, settings)


async def _nowhere(_messages: object) -> None:
    raise AssertionError("nothing is received here")


def test_instagram_has_its_own_sla_like_every_network() -> None:
    settings = Settings(sla_minutes=60, network_sla_minutes={Network.INSTAGRAM: 30})

    assert settings.sla_for()[Network.INSTAGRAM] == 30
    assert settings.sla_for()[Network.FACEBOOK] == 60
