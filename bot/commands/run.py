"""`frugal run`: serve Slack over HTTP or Socket Mode."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

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
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings, port=args.port or settings.port, socket_mode=args.socket))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    # Its C event loop and transports take ~10% less CPU per request than asyncio's (docs/benchmarks.md).
    return uvloop.new_event_loop


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port
