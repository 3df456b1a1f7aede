"""`frugal run`: serve Slack over HTTP or Socket Mode."""

from __future__ import annotations

import argparse
import asyncio

from bot.config import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `frugal run`."""
    parser = commands.add_parser("run", help="serve Slack (HTTP on $PORT, or Socket Mode)")
    parser.add_argument("--socket", action="store_true", help="use Socket Mode (needs SLACK_APP_TOKEN)")
    parser.add_argument("--port", type=_port, help="HTTP port (default: $PORT or 3000)")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, then serve until SIGINT/SIGTERM."""
    from bot.runtime import serve

    settings.require_serving(socket_mode=args.socket)
    asyncio.run(serve(settings, port=args.port or settings.port, socket_mode=args.socket))
    return 0


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port
