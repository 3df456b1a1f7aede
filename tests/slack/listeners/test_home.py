"""The App Home end to end: app_home_opened in, views.publish out, built from the real ledger."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from bot import composition
from bot.infra.db.engine import make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.ports.ledger import LedgerEntry
from bot.services.home import HomeService
from bot.services.quota import QuotaService
from tests.bolt_tasks import settle_listeners
from tests.fakes.slack_signing import event_callback


async def _use(frugal, fake_slack, channel_id: str, user_id: str, team_id: str = "T0001") -> None:
    _, name = await frugal.command("/rewrite", "hello there", channel_id=channel_id, user_id=user_id, team_id=team_id)
    await fake_slack.await_calls(f"response_url:{name}")


async def _open_home(frugal, fake_slack, user_id: str, *, team_id: str = "T0001", tab: str = "home") -> dict | None:
    before = len(fake_slack.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": user_id, "channel": "D0001", "tab": tab, "event_ts": "1700000000.1"}
    body, content_type = event_callback(event, team_id=team_id)
    response = await frugal.post(body, content_type)
    assert response.status == 200
    if tab != "home":
        return None
    calls = await fake_slack.await_calls("views.publish", count=before + 1)
    publish = calls[-1]
    assert publish.params["user_id"] == user_id
    view = publish.params["view"]
    return json.loads(view) if isinstance(view, str) else view


def _text(view: dict | None) -> str:
    return json.dumps(view, ensure_ascii=False)


def _member_of(fake_slack, *channels: str) -> None:
    fake_slack.responses["users.conversations"] = {
        "ok": True,
        "channels": [{"id": c} for c in channels],
        "response_metadata": {"next_cursor": ""},
    }


async def test_home_shows_the_users_channels_and_nothing_else(frugal, fake_slack):
    await _use(frugal, fake_slack, "C1", "U1")
    await _use(frugal, fake_slack, "C2", "U2")
    await _use(frugal, fake_slack, "C2", "U2")
    await _use(frugal, fake_slack, "C3", "U2")
    _member_of(fake_slack, "C2", "C9")

    view = await _open_home(frugal, fake_slack, "U1")

    text = _text(view)
    assert view["type"] == "home"
    # C1: used it there; C2: a member; C3: neither. C9 had no use, so it is not listed.
    assert "<#C1> — 1 request · " in text and "<#C2> — 2 requests · " in text
    assert "<#C3>" not in text and "<#C9>" not in text
    assert "admins only" not in text
    [lookup] = fake_slack.calls_to("users.conversations")
    assert lookup.params["user"] == "U1"


async def test_home_shows_the_model_chain_and_its_health(frugal, fake_slack):
    view = await _open_home(frugal, fake_slack, "U1")

    text = _text(view)
    assert "`gpt-4.1-nano` (primary) — healthy" in text
    assert "`gpt-4o-mini` (fallback) — healthy" in text
    assert "No Frugal use in your channels this month yet." in text


async def test_admins_also_see_every_channel_with_quota_and_digest(start_frugal, migrated_url, fake_slack):
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN")
    response, _ = await frugal.command("/frugal", "quota set here 100 requests/day", channel_id="C1", user_id="UADMIN")
    assert response.status == 200
    await _use(frugal, fake_slack, "C1", "U1")
    await _use(frugal, fake_slack, "C2", "U2")
    response, _ = await frugal.command("/frugal", "digest daily 09:30", channel_id="C5", user_id="UADMIN")
    assert response.status == 200
    _member_of(fake_slack)

    admin_view = _text(await _open_home(frugal, fake_slack, "UADMIN"))
    user_view = _text(await _open_home(frugal, fake_slack, "U1"))

    assert "(admins only)" in admin_view and "(admins only)" not in user_view
    for channel in ("C1", "C2", "C5"):
        assert f"*<#{channel}>*" in admin_view
    assert "Digest: daily at 09:30 (UTC)" in admin_view and "Digest: off" in admin_view
    # C1's own quota with its use; the others have none.
    assert "*<#C1>* — 1 request · " in admin_view
    assert "Quota: 1 of 100 requests per day used · *99 requests left*" in admin_view
    assert admin_view.count("Quota: none") == 2
    assert "Quota:" not in user_view
    assert "<#C2>" not in user_view


async def test_the_messages_tab_publishes_nothing(frugal, fake_slack):
    await _open_home(frugal, fake_slack, "U1", tab="messages")

    await settle_listeners()
    assert fake_slack.calls_to("views.publish") == []
    await _open_home(frugal, fake_slack, "U1")  # the same listener, on the Home tab, does publish
    assert len(fake_slack.calls_to("views.publish")) == 1


async def test_without_channel_access_the_home_says_so_and_shows_the_users_own_channels(frugal, fake_slack):
    await _use(frugal, fake_slack, "C1", "U1")
    await _use(frugal, fake_slack, "C2", "U2")
    fake_slack.responses["users.conversations"] = {"ok": False, "error": "missing_scope"}

    text = _text(await _open_home(frugal, fake_slack, "U1"))

    assert "Slack said `missing_scope`" in text
    assert "<#C1>" in text and "<#C2>" not in text


async def test_home_is_refreshed_each_time_it_is_opened(frugal, fake_slack):
    _member_of(fake_slack, "C1")
    first = _text(await _open_home(frugal, fake_slack, "U1"))
    await _use(frugal, fake_slack, "C1", "U2")

    second = _text(await _open_home(frugal, fake_slack, "U1"))

    assert "<#C1>" not in first and "<#C1> — 1 request · " in second


async def test_admins_see_the_forecast_of_a_usd_limit(start_frugal, migrated_url, fake_slack):
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN")
    response, _ = await frugal.command("/frugal", "quota set here $5/month", channel_id="C1", user_id="UADMIN")
    assert response.status == 200
    await _use(frugal, fake_slack, "C1", "U1")
    _member_of(fake_slack)

    admin_view = _text(await _open_home(frugal, fake_slack, "UADMIN"))

    # What it says depends on the day of the month (tests/services/test_forecast.py has each case); that it is there, not.
    assert "Forecast for $5.00 per month _(this channel's own)_: " in admin_view
    # A user sees the forecasts of the channels they use, not the admins' list.
    user_view = _text(await _open_home(frugal, fake_slack, "U1"))
    assert "• <#C1> — Forecast for $5.00 per month _(this channel's own)_: " in user_view
    assert "admins only" not in user_view


async def test_the_forecast_at_a_fixed_time_says_when_the_limit_would_be_passed(
    start_frugal, migrated_url, fake_slack, monkeypatch
):
    now = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)  # 591.5 of November's 720 hours
    monkeypatch.setattr(composition, "QuotaService", functools.partial(QuotaService, clock=lambda: now))
    monkeypatch.setattr(composition, "HomeService", functools.partial(HomeService, clock=lambda: now))
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN")
    ledger = SqlLedger(make_sessionmaker(frugal.container.engine))
    for i, (channel, cost) in enumerate([("C1", "4.50"), ("C2", "1.00")]):
        await ledger.record(
            LedgerEntry(
                team_id="T0001",
                channel_id=channel,
                user_id="U1",
                request_key=f"k{i}",
                task="rewrite",
                requested_model="gpt-4.1-nano",
                served_model="gpt-4.1-nano",
                prompt_tokens=100,
                cached_tokens=0,
                completion_tokens=10,
                cost_usd=Decimal(cost),
                baseline_cost_usd=None,
                energy_wh=None,
                latency_ms=1.0,
                outcome="ok",
                error_code=None,
                attempt=1,
                created_at=now - timedelta(days=2),
            )
        )
    for text, channel in [("quota set here $5/month", "C1"), ("quota set default $2/month", "C1")]:
        response, _ = await frugal.command("/frugal", text, channel_id=channel, user_id="UADMIN")
        assert response.status == 200
    _member_of(fake_slack)

    sections = [b["text"]["text"] for b in (await _open_home(frugal, fake_slack, "UADMIN"))["blocks"] if "text" in b]

    [c1] = [s for s in sections if s.startswith("*<#C1>*")]
    [c2] = [s for s in sections if s.startswith("*<#C2>*")]
    # $4.50 at that pace is $5.48 by the 30th; $5 is spent after 657.2 hours. C2 has only the default.
    assert c1.splitlines()[2] == (
        "Forecast for $5.00 per month _(this channel's own)_: about $5.48 by the end of the month at this pace: "
        "*over the limit around Nov 28*."
    )
    assert c2.splitlines()[2] == (
        "Forecast for $2.00 per month _(workspace default)_: about $1.22 by the end of the month at this pace, "
        "within the limit."
    )

    # U1 used both channels: their own Home has the same forecasts, costliest channel first.
    user = [b["text"]["text"] for b in (await _open_home(frugal, fake_slack, "U1"))["blocks"] if "text" in b]
    [forecasts] = [s for s in user if s.startswith("*Forecasts*")]
    assert forecasts.splitlines() == [
        "*Forecasts* (a straight line through this period's spend so far)",
        "• <#C1> — Forecast for $5.00 per month _(this channel's own)_: about $5.48 by the end of the month at this "
        "pace: *over the limit around Nov 28*.",
        "• <#C2> — Forecast for $2.00 per month _(workspace default)_: about $1.22 by the end of the month at this "
        "pace, within the limit.",
    ]
