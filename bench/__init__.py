"""Benchmarks: they print figures (one JSON object on the last line), they do not pass or fail."""
