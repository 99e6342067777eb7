"""Telegram through aiogram: events in (polling or webhook), messages out."""

from bots.telegram.channel import TelegramChannel

__all__ = ["TelegramChannel"]
