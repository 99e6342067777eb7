"""The conversation store: tables, engine and migrations."""
