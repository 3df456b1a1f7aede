"""How a USD limit's forecast reads in /usage, App Home and the digest (bot/services/forecast.py computes it)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.catalog import format_usd
from bot.services.forecast import MIN_ELAPSED_SHARE, Forecast
from bot.slack.quota_blocks import owner, per_period

_SO_FAR = {"day": "today", "week": "this week", "month": "this month"}


def forecast_line(f: Forecast, tz: ZoneInfo) -> str:
    """One line: where the period's spend is heading at its pace so far, said to be a forecast."""
    use = f.use
    limit = per_period(use.metric, use.limit, use.period.value)
    head = f"Forecast for {limit} _({owner(use)})_:"
    if f.already_over:
        return f"{head} the limit is reached already; it resets {_day(use.resets_at, tz)}."
    if use.used == 0:
        return f"{head} nothing spent yet {_SO_FAR[use.period.value]}."
    if f.projected is None:
        return (
            f"{head} too early to tell ({_percent(f.elapsed_share)} of the {use.period.value} has passed; "
            f"forecasts start at {_percent(MIN_ELAPSED_SHARE)})."
        )
    about = f"about {format_usd(f.projected)} by the end of the {use.period.value} at this pace"
    if f.over_at is None:
        return f"{head} {about}, within the limit."
    return f"{head} {about}: *over the limit around {_day(f.over_at, tz)}*."


def forecast_lines(forecasts: list[Forecast], tz: ZoneInfo) -> list[str]:
    """The line of each forecast, in order."""
    return [forecast_line(f, tz) for f in forecasts]


def _day(instant: datetime, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    return f"{local:%b} {local.day}"


def _percent(share) -> str:
    return f"{int(share * 100)} %"
