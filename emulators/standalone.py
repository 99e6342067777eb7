"""Running an emulator on its own (`python -m emulators.<network>`): the options every emulator
takes, and serving its app until interrupted."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web


def options(module: str, description: str, port: int) -> argparse.ArgumentParser:
    """A parser with --host, --port and --seed for `python -m <module>`; the network adds its
    own options."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and fault sampling")
    return parser


def serve(app: web.Application, args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    web.run_app(app, host=args.host, port=args.port)
