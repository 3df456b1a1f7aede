"""All table metadata the migrations manage, gathered in one place."""

from __future__ import annotations

from bot.infra.db import (  # noqa: F401  (model health, classify labels)
    button_texts,  # noqa: F401  (what buttons post, kept a day)
    classify_cache,  # noqa: F401  (recent /classify labels by hash)
    deliveries,  # noqa: F401  (once-only Slack deliveries)
    digest_tables,  # noqa: F401  (digest subscriptions and runs)
    labels,
    model_status,
    quota_tables,  # noqa: F401  (quota limits, counters, reservations)
    tables,  # noqa: F401  (registers the tables on Base.metadata)
)
from bot.infra.db.base import Base
from bot.infra.db.slack_stores import slack_metadata

target_metadata = [slack_metadata(), Base.metadata]
