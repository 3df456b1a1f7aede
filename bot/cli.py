"""The `frugal` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.catalog import CatalogError
from bot.commands import check, digest, migrate, run, usage
from bot.config import ConfigError, load_settings

# Each module adds its subcommand with add_parser(); its handler(settings, args) returns the exit code.
COMMANDS = [run, migrate, check, digest, usage]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `frugal` console script."""
    args = build_parser().parse_args(argv)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of COMMANDS."""
    parser = argparse.ArgumentParser(prog="frugal", description="Frugal: cheap writing help in Slack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(commands)
    return parser


def _configure_logging() -> None:
    # Library loggers stay at WARNING: at DEBUG they print request payloads, i.e. message text.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot").setLevel(logging.INFO)
    logging.getLogger("frugal").setLevel(logging.INFO)
