"""Instagram direct messages, through the Messenger Platform: the Facebook channel with
Instagram's webhook object, limits and names."""

from bots.instagram.channel import InstagramChannel

__all__ = ["InstagramChannel"]
