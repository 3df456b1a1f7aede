"""/usage end to end: a seeded ledger and a real quota, a signed /usage in, the ephemeral report on the fake Slack."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot import composition
from bot.infra.db.engine import make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.ports.ledger import LedgerEntry
from bot.ports.quota import Period
from bot.ports.quota_store import Scope
from bot.services.quota import QuotaService
from bot.services.quota_spec import parse_limit, period_start
from bot.services.usage import UsageService


def _entry(
    at: datetime,
    model: str,
    cost: str | None,
    *,
    channel: str = "C0001",
    user: str = "U1",
    outcome: str = "ok",
    tokens: tuple[int, int, int] = (1000, 200, 100),
    baseline: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        team_id="T0001",
        channel_id=channel,
        user_id=user,
        request_key=f"k-{at.isoformat()}-{model}-{channel}-{user}",
        task="rewrite",
        requested_model=model,
        served_model=model if outcome == "ok" else None,
        prompt_tokens=tokens[0],
        cached_tokens=tokens[1],
        completion_tokens=tokens[2],
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=Decimal(baseline) if baseline is not None else None,
        energy_wh=None,
        latency_ms=4.0,
        outcome=outcome,
        error_code=None if outcome == "ok" else "timeout",
        attempt=1,
        created_at=at,
    )


async def _seed(frugal, *entries: LedgerEntry) -> None:
    ledger = SqlLedger(make_sessionmaker(frugal.container.engine))
    for entry in entries:
        await ledger.record(entry)


async def _usage(frugal, fake_slack, channel: str = "C0001", user: str = "U0001") -> tuple[str, str, list[dict]]:
    response, name = await frugal.command("/usage", "", channel_id=channel, user_id=user)
    assert response.status == 200
    assert (await response.text()) == ""  # acked at once, answered after
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["response_type"] == "ephemeral"
    blocks = answer.params["blocks"]
    texts = [b["text"]["text"] if "text" in b else b["elements"][0]["text"] for b in blocks]
    return answer.params["text"], json.dumps(blocks, ensure_ascii=False), texts


# Mid-month, so that "earlier this month but not today" exists whatever day the suite runs on.
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)


@pytest.fixture
async def frugal_at_now(start_frugal, migrated_url, monkeypatch):
    """A running Frugal whose usage and quota services read NOW as the time."""
    monkeypatch.setattr(composition, "QuotaService", functools.partial(QuotaService, clock=lambda: NOW))
    monkeypatch.setattr(composition, "UsageService", functools.partial(UsageService, clock=lambda: NOW))
    return await start_frugal(migrated_url)


async def test_usage_shows_this_month_today_by_model_and_the_quota_exact_to_the_cent(frugal_at_now, fake_slack):
    frugal, now = frugal_at_now, NOW
    utc = ZoneInfo("UTC")
    month_start, day_start = period_start(Period.MONTH, now, utc), period_start(Period.DAY, now, utc)
    earlier = day_start - timedelta(hours=1)
    await _seed(
        frugal,
        _entry(now - timedelta(seconds=5), "gpt-4.1-nano", "0.505", baseline="2.005"),
        _entry(now - timedelta(seconds=4), "gpt-4.1-nano", None, outcome="error", tokens=(0, 0, 0)),
        _entry(now - timedelta(seconds=3), "local-llm", None, tokens=(10, 0, 5)),
        _entry(earlier, "gpt-4o-mini", "0.75", tokens=(2000, 0, 500)),
        _entry(earlier, "gpt-4.1-nano", "0.125"),
        _entry(now - timedelta(seconds=5), "gpt-4.1-nano", "9", channel="C0002"),  # another channel
        _entry(month_start - timedelta(minutes=1), "gpt-4.1-nano", "100"),  # last month
    )
    await frugal.container.quota.set_limit("T0001", Scope.CHANNEL, "C0001", parse_limit("$5/month"), set_by="UADMIN")

    text, _, sections = await _usage(frugal, fake_slack)

    assert text == "This channel this month: 4 requests, $1.38 + 1 request at an unknown price."
    header, month, today, quotas, forecast, footer = sections
    assert header.startswith("*Frugal usage of <#C0001>* — ")
    assert month.splitlines() == [
        f"*This month* (since 1 {month_start:%b})",
        "4 requests · 4,010 tokens in (400 cached), 705 out · *$1.38 + 1 request at an unknown price*",
        "• `gpt-4o-mini` — 1 request · 2,000 tokens in (0 cached), 500 out · $0.75",
        "• `gpt-4.1-nano` — 2 requests · 2,000 tokens in (400 cached), 200 out · $0.63",
        "• `local-llm` — 1 request · 10 tokens in (0 cached), 5 out · price unknown",
        "_1 failed attempt, not charged; saved $1.50 against the baseline model_",
    ]
    assert today.splitlines() == [
        f"*Today* (since {day_start.day} {day_start:%b} 00:00)",
        "2 requests · 1,010 tokens in (200 cached), 105 out · *$0.505 + 1 request at an unknown price*",
        "• `gpt-4.1-nano` — 1 request · 1,000 tokens in (200 cached), 100 out · $0.505",
        "• `local-llm` — 1 request · 10 tokens in (0 cached), 5 out · price unknown",
        "_1 failed attempt, not charged; saved $1.50 against the baseline model_",
    ]
    assert quotas.startswith("*Quotas*\n• $1.38 of $5.00 per month used · *$3.62 left* · resets <!date^")
    assert "{date_short_pretty} at {time}|" in quotas and quotas.endswith("_(this channel's own)_")
    # 591.5 of November's 720 hours have passed: $1.38 at that pace is $1.68 by the month's end.
    assert forecast == (
        "• Forecast for $5.00 per month _(this channel's own)_: about $1.68 by the end of the month at this pace, "
        "within the limit."
    )
    assert "counted in UTC" in footer and "straight line" in footer


async def test_a_quiet_channel_says_so_and_shows_the_default_quota(frugal, fake_slack):
    await frugal.container.quota.set_limit("T0001", Scope.DEFAULT, "", parse_limit("200 requests/day"), set_by="UADMIN")

    text, _, sections = await _usage(frugal, fake_slack, channel="C0009")

    assert text == "This channel this month: 0 requests, $0.00."
    assert sections[1].endswith("\nNo requests.") and sections[2].endswith("\nNo requests.")
    assert sections[3].startswith("*Quotas*\n• 0 of 200 requests per day used · *200 requests left*")
    assert sections[3].endswith("_(workspace default)_")
    assert "Forecast" not in " ".join(sections)  # a limit on requests gets none, and the footer does not mention one


async def test_without_quotas_the_report_says_none_apply(frugal, fake_slack):
    await _seed(frugal, _entry(datetime.now(timezone.utc) - timedelta(seconds=2), "gpt-4.1-nano", "0.25"))

    _, _, sections = await _usage(frugal, fake_slack)

    assert sections[1].splitlines()[1] == "`gpt-4.1-nano`: 1 request · 1,000 tokens in (200 cached), 100 out · *$0.25*"
    assert sections[3] == "*Quotas*\nNo quota applies to this channel."


async def test_usage_always_says_how_many_tokens_were_cached(frugal, fake_slack):
    await _seed(
        frugal, _entry(datetime.now(timezone.utc) - timedelta(seconds=2), "gpt-4.1-nano", "0.25", tokens=(900, 0, 80))
    )

    _, _, sections = await _usage(frugal, fake_slack)

    assert sections[1].splitlines()[1] == "`gpt-4.1-nano`: 1 request · 900 tokens in (0 cached), 80 out · *$0.25*"


@pytest.fixture
def frugal_at(start_frugal, migrated_url, monkeypatch):
    """Start a Frugal whose usage and quota services read the given instant as the time."""

    async def start(now: datetime):
        monkeypatch.setattr(composition, "QuotaService", functools.partial(QuotaService, clock=lambda: now))
        monkeypatch.setattr(composition, "UsageService", functools.partial(UsageService, clock=lambda: now))
        return await start_frugal(migrated_url)

    return start


def _forecasts(sections: list[str]) -> list[str]:
    return [line for s in sections if s.startswith("• Forecast") for line in s.splitlines()]


async def _set(frugal, scope: Scope, target: str, limit: str) -> None:
    await frugal.container.quota.set_limit("T0001", scope, target, parse_limit(limit), set_by="UADMIN")


async def test_usage_forecasts_each_usd_limit_and_when_it_would_pass_it(frugal_at, fake_slack):
    frugal = await frugal_at(NOW)
    await _seed(
        frugal,
        _entry(NOW - timedelta(days=3), "gpt-4.1-nano", "4.20"),
        _entry(NOW - timedelta(hours=1), "gpt-4.1-nano", "0.30"),
    )
    await _set(frugal, Scope.CHANNEL, "C0001", "$5/month")
    await _set(frugal, Scope.DEFAULT, "", "$5/month")  # the channel's own limit replaces it
    await _set(frugal, Scope.DEFAULT, "", "$1/day")
    await _set(frugal, Scope.DEFAULT, "", "1000 requests/day")

    _, _, sections = await _usage(frugal, fake_slack)

    # 591.5 of November's 720 hours: $4.50 at that pace is $5.48 by the 30th, and $5 is spent after 657.2 hours;
    # 15.5 of today's 24 hours: $0.30 at that pace is $0.465 by midnight.
    assert _forecasts(sections) == [
        "• Forecast for $5.00 per month _(this channel's own)_: about $5.48 by the end of the month at this pace: "
        "*over the limit around Nov 28*.",
        "• Forecast for $1.00 per day _(workspace default)_: about $0.465 by the end of the day at this pace, "
        "within the limit.",
    ]


async def test_usage_says_it_is_too_early_to_forecast_in_the_first_tenth_of_a_month(frugal_at, fake_slack):
    early = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)  # 36 of 720 hours
    frugal = await frugal_at(early)
    await _seed(frugal, _entry(early - timedelta(hours=1), "gpt-4.1-nano", "1"))
    await _set(frugal, Scope.CHANNEL, "C0001", "$5/month")

    _, _, sections = await _usage(frugal, fake_slack)

    assert _forecasts(sections) == [
        "• Forecast for $5.00 per month _(this channel's own)_: too early to tell (5 % of the month has passed; "
        "forecasts start at 10 %)."
    ]


async def test_usage_says_a_reached_limit_is_reached_and_forecasts_nothing_spent(frugal_at, fake_slack):
    frugal = await frugal_at(NOW)
    await _seed(frugal, _entry(NOW - timedelta(hours=2), "gpt-4.1-nano", "1.50"))
    await _set(frugal, Scope.CHANNEL, "C0001", "$1/month")
    await _set(frugal, Scope.DEFAULT, "", "$5/month")

    _, _, mine = await _usage(frugal, fake_slack)
    _, _, quiet = await _usage(frugal, fake_slack, channel="C0002")

    assert _forecasts(mine) == [
        "• Forecast for $1.00 per month _(this channel's own)_: the limit is reached already; it resets Dec 1."
    ]
    assert _forecasts(quiet) == ["• Forecast for $5.00 per month _(workspace default)_: nothing spent yet this month."]


async def test_usage_shows_the_askers_own_limits_counted_in_every_channel(frugal_at, fake_slack):
    frugal = await frugal_at(NOW)
    await _seed(
        frugal,
        _entry(NOW - timedelta(hours=3), "gpt-4.1-nano", "0.40", user="U1"),
        _entry(NOW - timedelta(hours=2), "gpt-4.1-nano", "0.35", user="U1", channel="C0002"),
        _entry(NOW - timedelta(hours=1), "gpt-4.1-nano", "0.25", user="U2"),
    )
    await _set(frugal, Scope.USER, "U1", "$2/month")
    await _set(frugal, Scope.DEFAULT_USER, "", "100 requests/day")

    _, _, ana = await _usage(frugal, fake_slack, user="U1")
    _, _, ben = await _usage(frugal, fake_slack, user="U2")

    [own] = [s for s in ana if s.startswith("*Your limits*")]
    title, *lines = own.splitlines()
    assert title == "*Your limits* (in every channel)"
    [usd] = [line for line in lines if line.endswith("_(your own)_")]
    [requests] = [line for line in lines if line.endswith("_(per-person default)_")]
    assert len(lines) == 2
    # U1's $0.75 in both channels, not U2's $0.25 in this one; both their requests today.
    assert usd.startswith("• $0.75 of $2.00 per month used · *$1.25 left*")
    assert requests.startswith("• 2 of 100 requests per day used · *98 requests left*")
    assert "No quota applies to this channel." in ana[3]  # no channel limit: the personal ones are apart
    # $0.75 over 591.5 of November's 720 hours: $0.913 by the 30th.
    assert _forecasts(ana) == [
        "• Forecast for $2.00 per month _(your own)_: about $0.913 by the end of the month at this pace, "
        "within the limit."
    ]
    [theirs] = [s for s in ben if s.startswith("*Your limits*")]
    assert theirs.splitlines()[1:] == [theirs.splitlines()[1]]  # only the default: U1's own limit is not shown
    assert theirs.splitlines()[1].startswith("• 1 of 100 requests per day used")
    assert _forecasts(ben) == []


async def test_usage_without_personal_limits_has_no_section_for_them(frugal, fake_slack):
    await frugal.container.quota.set_limit("T0001", Scope.CHANNEL, "C0001", parse_limit("$5/month"), set_by="UADMIN")

    _, _, sections = await _usage(frugal, fake_slack)

    assert not any(s.startswith("*Your limits*") for s in sections)
