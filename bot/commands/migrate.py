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
    """Apply pending migrations under the migration lock, printing each one applied."""
    from bot.infra.db.migrate import upgrade

    applied = asyncio.run(upgrade(settings.database_url))
    for step in applied:
        print(f"applied {step.revision}: {step.description}")
    if applied:
        print(f"database is up to date ({len(applied)} migration(s) applied)")
    else:
        print("database was already up to date: nothing to apply")
    return 0
