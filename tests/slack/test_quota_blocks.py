"""Quota wording in Slack: Slack date tokens, use lines, and the show blocks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from bot.ports.quota import Metric, Period, QuotaUse
from bot.ports.quota_store import LimitRecord, Scope
from bot.slack.quota_blocks import channel_quotas, default_limits, slack_date, use_line

RESET = datetime(2026, 12, 1, 0, 0, tzinfo=timezone(timedelta(hours=1)))  # midnight in Paris = 23:00 UTC


def test_slack_date_renders_in_the_readers_zone_with_a_utc_fallback():
    assert slack_date(RESET) == "<!date^1796079600^{date_short_pretty} at {time}|2026-11-30 23:00 UTC>"


def test_use_line_names_used_limit_left_reset_and_owner():
    use = QuotaUse("default", "", Metric.TOKENS, Period.WEEK, Decimal(100_000), Decimal(99_999), RESET, RESET)

    assert use_line(use) == (
        "99,999 of 100,000 tokens per week used · *1 token left* · "
        "resets <!date^1796079600^{date_short_pretty} at {time}|2026-11-30 23:00 UTC> _(workspace default)_"
    )


def test_over_use_shows_nothing_left_never_a_negative():
    use = QuotaUse("channel", "C1", Metric.USD, Period.MONTH, Decimal(5), Decimal("5.02"), RESET, RESET)

    assert use_line(use).startswith("$5.02 of $5.00 per month used · *$0.00 left*")


def test_show_blocks_for_no_quota_and_for_defaults():
    assert "No quota applies to <#C1>" in channel_quotas("C1", [], "UTC")[0]["text"]["text"]
    assert "no default quota" in default_limits([], "UTC")[0]["text"]["text"]
    blocks = default_limits([LimitRecord(Scope.DEFAULT, "", Metric.REQUESTS, Period.DAY, Decimal(200))], "Europe/Paris")
    assert "• 200 requests per day" in blocks[0]["text"]["text"]
    assert "Europe/Paris" in blocks[1]["elements"][0]["text"]
