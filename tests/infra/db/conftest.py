"""Fixtures of the database tests."""

from __future__ import annotations

import pytest

from bot.infra.db.engine import make_engine


@pytest.fixture
async def engines(migrated_url):
    """Two engines on one database: what two Frugal replicas would have."""
    engines = [make_engine(migrated_url), make_engine(migrated_url)]
    yield engines
    for engine in engines:
        await engine.dispose()
