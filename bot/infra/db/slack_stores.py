"""slack_sdk's installation and OAuth-state stores on Frugal's database, their tables, and each workspace's Grid org."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base
from bot.infra.db.sqlite_writers import write_turn

log = logging.getLogger(__name__)

INSTALLATIONS_TABLE = AsyncSQLAlchemyInstallationStore.default_installations_table_name
BOTS_TABLE = AsyncSQLAlchemyInstallationStore.default_bots_table_name
STATES_TABLE = AsyncSQLAlchemyOAuthStateStore.default_table_name


def slack_metadata() -> MetaData:
    """The stores' tables, defined by slack_sdk exactly as the stores build them."""
    metadata = MetaData()
    AsyncSQLAlchemyInstallationStore.build_installations_table(metadata, INSTALLATIONS_TABLE)
    AsyncSQLAlchemyInstallationStore.build_bots_table(metadata, BOTS_TABLE)
    AsyncSQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, STATES_TABLE)
    return metadata


def installation_store(client_id: str, engine: AsyncEngine) -> AsyncSQLAlchemyInstallationStore:
    """Installations (one bot token per workspace) in the Frugal database."""
    return AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine)


def state_store(engine: AsyncEngine, *, expiration_seconds: int) -> AsyncSQLAlchemyOAuthStateStore:
    """OAuth `state` values, shared by every replica through the database."""
    return AsyncSQLAlchemyOAuthStateStore(expiration_seconds=expiration_seconds, engine=engine)


class SlackWorkspaceRow(Base):
    """A workspace of an Enterprise Grid org: the org, and whether Frugal is installed org-wide."""

    __tablename__ = "slack_workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(32))
    is_enterprise_install: Mapped[bool]
    seen_at: Mapped[datetime]


class SqlWorkspaceOrgs:
    """Each Grid workspace's org, as its requests show it, so a token lookup without a request can pass it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # What this process has written: a workspace's requests write once, not on every request.
        self._known: dict[str, tuple[str, bool]] = {}

    async def remember(self, team_id: str, enterprise_id: str, is_enterprise_install: bool) -> None:
        """Record the workspace's org; a database error is logged and the next request tries again."""
        org = (enterprise_id, is_enterprise_install)
        if self._known.get(team_id) == org:
            return
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        values = {
            "enterprise_id": enterprise_id,
            "is_enterprise_install": is_enterprise_install,
            "seen_at": datetime.now(timezone.utc),
        }
        statement = dialect.insert(SlackWorkspaceRow).values(team_id=team_id, **values)
        statement = statement.on_conflict_do_update(index_elements=["team_id"], set_=values)
        try:
            async with write_turn(self._engine), self._engine.begin() as conn:
                await conn.execute(statement)
        except (SQLAlchemyError, OSError) as err:
            # Only later token lookups need it; the request itself goes on.
            log.warning("could not record workspace %s's Grid org (%s)", team_id, type(err).__name__)
            return
        self._known[team_id] = org

    async def org_of(self, team_id: str) -> tuple[str, bool] | None:
        """(enterprise_id, is_enterprise_install) of the workspace, or None when none was recorded."""
        query = select(SlackWorkspaceRow.enterprise_id, SlackWorkspaceRow.is_enterprise_install).where(
            SlackWorkspaceRow.team_id == team_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        return (row.enterprise_id, row.is_enterprise_install) if row is not None else None
