"""All table metadata the migrations manage, gathered in one place."""

from __future__ import annotations

from bot.infra.db import tables  # noqa: F401  (registers the tables on Base.metadata)
from bot.infra.db import labels, model_status  # noqa: F401  (model health, classify labels)
from bot.infra.db import digest_tables  # noqa: F401  (digest subscriptions and runs)
from bot.infra.db import deliveries  # noqa: F401  (once-only Slack deliveries)
from bot.infra.db import quota_tables  # noqa: F401  (quota limits, counters, reservations)
from bot.infra.db import classify_cache  # noqa: F401  (recent /classify labels by hash)
from bot.infra.db import button_texts  # noqa: F401  (what buttons post, kept a day)
from bot.infra.db.base import Base
from bot.infra.db.slack_stores import slack_metadata

target_metadata = [slack_metadata(), Base.metadata]
