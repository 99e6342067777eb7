"""The web chat: an embeddable widget (`/widget.js`) talking over a WebSocket (`/ws/chat`)."""

from bots.webchat.channel import WebChatChannel

__all__ = ["WebChatChannel"]
