"""HTTP surface: health endpoints now; the inbox, admin pages and REST API build on it."""
