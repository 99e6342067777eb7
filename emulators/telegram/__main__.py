"""Run the Telegram Bot API emulator on its own: `python -m emulators.telegram --port 8081
--token 123:ABC` (--token repeatable, one emulated bot each)."""

from __future__ import annotations

from collections.abc import Sequence

from emulators.standalone import options, serve
from emulators.telegram.emulator import DEFAULT_TOKEN, TelegramEmulator


def main(argv: Sequence[str] | None = None) -> None:
    parser = options("emulators.telegram", "Run the Telegram Bot API emulator.", port=8081)
    parser.add_argument(
        "--token",
        action="append",
        help=f"a bot token to serve (repeatable; default {DEFAULT_TOKEN})",
    )
    args = parser.parse_args(argv)
    emulator = TelegramEmulator(args.token or [DEFAULT_TOKEN], seed=args.seed)
    serve(emulator.app, args)


if __name__ == "__main__":
    main()
