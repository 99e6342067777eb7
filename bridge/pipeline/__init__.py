"""Inbound pipeline: dedupe -> store -> route, a batch of bus entries per transaction."""
