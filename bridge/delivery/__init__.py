"""Outbound delivery shared by every network: rate limits, retries, delivery status."""
