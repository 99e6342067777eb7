"""VK community bots through vk_api: events in (Bots Long Poll or Callback API), messages out."""

from bots.vk.channel import VkChannel

__all__ = ["VkChannel"]
