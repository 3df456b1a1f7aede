"""slack_sdk's installation and OAuth-state stores on Frugal's database, and their tables."""

from __future__ import annotations

from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

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
