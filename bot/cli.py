"""The `frugal` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from dotenv import load_dotenv
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

from bot.catalog import CatalogError
from bot.commands import check, digest, migrate, run, usage
from bot.config import (
    ConfigError,
    Settings,
    diagnose_settings,
    load_serving_settings,
    load_settings,
)
from bot.ports.store import StoreUnavailable

# Each module adds its subcommand with add_parser(); its handler(settings, args) returns the exit code.
COMMANDS = [run, migrate, check, digest, usage]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `frugal` console script."""
    args = build_parser().parse_args(argv)
    _configure_logging()
    # .env's values join the process environment (never over what is set there), so that the openai
    # library reads OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_CUSTOM_HEADERS and proxies from it too.
    load_dotenv(".env", override=False)
    try:
        settings = _settings_for(args)
        if args.command == "run":
            # A rejected token stops the start here, before migrations, rather than retrying forever.
            from bot.slack.tokens import verify_tokens

            asyncio.run(verify_tokens(settings, socket_mode=args.socket))
        return args.handler(settings, args)
    except (ConfigError, CatalogError) as err:
        for line in str(err).splitlines():
            print(f"frugal: {line}", file=sys.stderr)
        return 2
    except StoreUnavailable as err:
        # Named after the driver's error the store saw (OperationalError, ConnectionRefusedError, ...).
        cause = err.cause_name
        print(f"frugal: DATABASE_URL: cannot use the database ({cause})", file=sys.stderr)
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


def _settings_for(args: argparse.Namespace) -> Settings:
    """The settings a subcommand needs; every problem with them in one ConfigError."""
    if args.command == "run":
        return load_serving_settings(socket_mode=args.socket)
    if args.command == "check":
        # check reports what serving lacks in its table, beside everything else it checks; a wrong
        # value leaves nothing to check with, so it stops here, before any database is touched.
        settings, problems = diagnose_settings(serving=True)
        if settings is None:
            raise ConfigError(problems)
        return settings
    return load_settings()


class _DropClientWinsWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that the client Frugal hands it
    wins over that token; that is the intent (the client carries the same token, SLACK_API_URL and retries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _configure_logging() -> None:
    # Library loggers stay at WARNING: at DEBUG they print request payloads, i.e. message text.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot").setLevel(logging.INFO)
    logging.getLogger("frugal").setLevel(logging.INFO)
    logging.getLogger("frugal.bolt").addFilter(_DropClientWinsWarning())
