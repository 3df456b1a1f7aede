"""Alembic environment: runs on a connection handed in by bot.infra.db.migrate, or opens one."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bot.infra.db.metadata import target_metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        on_version_apply=_record_step,
    )
    with context.begin_transaction():
        context.run_migrations()


def _record_step(*, ctx, step, heads, run_args) -> None:
    applied = context.config.attributes.get("applied")
    if applied is not None and step.is_upgrade and step.up_revision is not None:
        applied.append((step.up_revision_id, getattr(step.up_revision, "doc", "")))


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from bot.config import load_settings
    from bot.infra.db.migrate import upgrade

    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported; use `frugal migrate`")
    asyncio.run(upgrade(load_settings().database_url))


_main()
