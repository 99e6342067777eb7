"""The long-running processes the CLI starts: `core`, `bot NETWORK`, `web`, and `run` (all of
them in one process). Each role imports only what it uses: a bot process, started and
restarted often, does not load the knowledge base's numerical libraries."""
