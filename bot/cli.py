"""The `frugal` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.catalog import CatalogError
from bot.config import ConfigError, Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `frugal` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        settings = load_settings()
        return args.handler(settings, args)
    except (ConfigError, CatalogError) as err:
        print(f"frugal: {err}", file=sys.stderr)
        return 2
    except (OperationalError, DBAPIError, OSError) as err:
        print(f"frugal: DATABASE_URL: cannot use the database ({type(err).__name__})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import serve

    settings.require_serving(socket_mode=args.socket)
    asyncio.run(serve(settings, port=args.port or settings.port, socket_mode=args.socket))
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.infra.db.migrate import upgrade

    asyncio.run(upgrade(settings.database_url))
    print("database is up to date")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugal", description="Frugal: cheap writing help in Slack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="serve Slack (HTTP on $PORT, or Socket Mode)")
    run.add_argument("--socket", action="store_true", help="use Socket Mode (needs SLACK_APP_TOKEN)")
    run.add_argument("--port", type=_port, help="HTTP port (default: $PORT or 3000)")
    run.set_defaults(handler=_run)

    migrate = commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    migrate.set_defaults(handler=_migrate)
    return parser


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port


def _configure_logging() -> None:
    # Library loggers stay at WARNING: at DEBUG they print request payloads, i.e. message text.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot").setLevel(logging.INFO)
    logging.getLogger("frugal").setLevel(logging.INFO)
