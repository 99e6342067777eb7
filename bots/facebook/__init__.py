"""Facebook Messenger through the Graph API with plain aiohttp: signed webhooks in, Send API out."""

from bots.facebook.channel import FacebookChannel

__all__ = ["FacebookChannel"]
