"""All table metadata the migrations manage, gathered in one place."""

from __future__ import annotations

from bot.infra.db import tables  # noqa: F401  (registers the tables on Base.metadata)
from bot.infra.db.base import Base

target_metadata = [Base.metadata]
