"""`frugal migrate`: alembic upgrade head on DATABASE_URL."""

from __future__ import annotations

import argparse
import asyncio

from bot.config import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `frugal migrate`."""
    parser = commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    parser.set_defaults(handler=migrate)


def migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Apply pending migrations under the migration lock."""
    from bot.infra.db.migrate import upgrade

    asyncio.run(upgrade(settings.database_url))
    print("database is up to date")
    return 0
