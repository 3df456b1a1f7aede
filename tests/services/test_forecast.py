"""Straight-line forecasts of USD limits: the arithmetic, and how each case reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.ports.quota import Metric, Period, QuotaUse
from bot.services.forecast import MIN_ELAPSED_SHARE, forecast, forecasts
from bot.slack.forecast_blocks import forecast_line

START = datetime(2026, 12, 1, tzinfo=timezone.utc)
END = datetime(2027, 1, 1, tzinfo=timezone.utc)  # 31 days
UTC = ZoneInfo("UTC")


def _use(used: str, limit: str = "5", metric: Metric = Metric.USD) -> QuotaUse:
    return QuotaUse(
        scope="channel",
        target="C1",
        metric=metric,
        period=Period.MONTH,
        limit=Decimal(limit),
        used=Decimal(used),
        period_start=START,
        resets_at=END,
    )


def test_a_month_heading_over_the_limit_says_when():
    now = START + timedelta(days=10)  # 10 of 31 days
    f = forecast(_use("2"), now)
    assert f.projected == Decimal("2") / (Decimal(10 * 86400) / Decimal(31 * 86400))  # $6.20
    # $2 in 10 days is $0.20 a day: the $5 limit is reached on day 25.
    assert f.over_at == START + timedelta(days=25)
    assert not f.on_track and not f.too_early
    assert forecast_line(f, UTC) == (
        "Forecast for $5.00 per month _(this channel's own)_: about $6.20 by the end of the month at this pace: "
        "*over the limit around Dec 26*."
    )


def test_a_month_on_track_says_so():
    f = forecast(_use("1"), START + timedelta(days=15, hours=12))  # half of December
    assert f.projected == Decimal("2") and f.over_at is None and f.on_track
    assert forecast_line(f, UTC).endswith("about $2.00 by the end of the month at this pace, within the limit.")


def test_no_spend_forecasts_nothing_spent():
    f = forecast(_use("0"), START + timedelta(days=20))
    assert (f.projected, f.over_at, f.on_track) == (Decimal(0), None, True)
    assert forecast_line(f, UTC).endswith(": nothing spent yet this month.")
    # Nothing spent is a fact, not an extrapolation: said even in the first hours.
    assert forecast_line(forecast(_use("0"), START + timedelta(hours=1)), UTC).endswith(
        ": nothing spent yet this month."
    )


def test_the_first_hours_of_a_period_are_too_early_to_tell():
    # One dear request in the first hour is not $3,720 a month.
    f = forecast(_use("4.99"), START + timedelta(hours=1))
    assert f.too_early and f.projected is None and f.over_at is None
    assert f.elapsed_share < MIN_ELAPSED_SHARE
    assert "too early to tell (0 % of the month has passed; forecasts start at 10 %)" in forecast_line(f, UTC)


def test_a_reached_limit_says_so_rather_than_forecasting():
    f = forecast(_use("5.01"), START + timedelta(hours=1))
    assert f.already_over and not f.too_early
    assert forecast_line(f, UTC).endswith("the limit is reached already; it resets Jan 1.")


@pytest.mark.parametrize("metric", [Metric.REQUESTS, Metric.TOKENS])
def test_only_usd_limits_are_forecast(metric):
    assert forecast(_use("10", "100", metric), START + timedelta(days=20)) is None
    assert forecasts([_use("10", "100", metric), _use("1")], START + timedelta(days=20))[0].use.metric is Metric.USD


def test_dates_read_in_the_operators_zone():
    # At the pace of the spend so far, the limit is reached at 23:00 UTC on Dec 25: Dec 26 in Tokyo.
    now = START + timedelta(days=10, hours=11, minutes=30)
    hours = Decimal(10 * 24 + 11.5)
    f = forecast(_use(str(Decimal(5) * hours / Decimal(24 * 24 + 23))), now)
    assert f.over_at == START + timedelta(days=24, hours=23)
    assert forecast_line(f, UTC).endswith("around Dec 25*.")
    assert forecast_line(f, ZoneInfo("Asia/Tokyo")).endswith("around Dec 26*.")


def test_a_month_with_a_clock_change_counts_its_real_hours():
    # October 2026 in Paris has 745 hours (clocks go back on the 25th); 372.5 of them is exactly half.
    paris = ZoneInfo("Europe/Paris")
    start, end = datetime(2026, 10, 1, tzinfo=paris), datetime(2026, 11, 1, tzinfo=paris)
    use = QuotaUse(
        scope="default",
        target="",
        metric=Metric.USD,
        period=Period.MONTH,
        limit=Decimal(5),
        used=Decimal(3),
        period_start=start,
        resets_at=end,
    )
    halfway = start.astimezone(timezone.utc) + timedelta(hours=372.5)
    f = forecast(use, halfway)
    assert f.elapsed_share == Decimal("0.5") and f.projected == Decimal(6)
    # $3 in 372.5 hours: $5 after 620.83 hours, on Oct 26 in Paris (after the change).
    assert f.over_at == start.astimezone(timezone.utc) + timedelta(hours=372.5) * 5 / 3
    assert forecast_line(f, paris).endswith("*over the limit around Oct 26*.")


def test_a_forecast_never_reads_before_the_period_or_after_its_end():
    f = forecast(_use("1"), END + timedelta(days=3))  # a use read late: the whole period has passed
    assert f.elapsed_share == 1 and f.projected == Decimal(1)
    assert forecast(_use("1"), START - timedelta(hours=1)).too_early
