"""/frugal digest end to end: signed slash commands in, acks and posts out, subscriptions in the database."""

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
from bot.ports.digest_store import Frequency
from bot.ports.ledger import LedgerEntry
from bot.services.digest import DigestService
from bot.services.quota import QuotaService
from bot.slack.grammar import HELP_POINTER
from bot.slack.listeners.digest import NOT_A_MEMBER_WARNING
from tests.bolt_tasks import settle_listeners

PARIS = ZoneInfo("Europe/Paris")
ADMIN = "UADMIN"


@pytest.fixture
async def admin_frugal(start_frugal, migrated_url):
    """Frugal with UADMIN as a Frugal admin, counting digest times in Paris."""
    return await start_frugal(migrated_url, FRUGAL_ADMINS=ADMIN, FRUGAL_TIMEZONE="Europe/Paris")


async def _say(frugal, text: str, *, user_id: str = ADMIN, channel_id: str = "C1") -> str:
    response, _ = await frugal.command("/frugal", text, user_id=user_id, channel_id=channel_id, team_id="T0001")
    assert response.status == 200
    return (await response.json())["text"]


def _next_monday_at(hour: int, minute: int) -> str:
    now = datetime.now(PARIS)
    day = now.date()
    while True:
        at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)
        if day.weekday() == 0 and at > now:
            return f"{at:%a} {at.day} {at:%b} at {at:%H:%M}"
        day += timedelta(days=1)


async def test_an_admin_subscribes_and_is_told_when_the_first_digest_comes(admin_frugal):
    answer = await _say(admin_frugal, "digest weekly 09:30")

    assert answer == (
        "Done: this channel will get a weekly cost digest every Monday at 09:30 (Europe/Paris), covering the "
        f"previous Monday–Sunday. The first one comes {_next_monday_at(9, 30)}."
    )
    sub = await admin_frugal.container.digests.subscription("T0001", "C1")
    assert (sub.frequency, f"{sub.send_time:%H:%M}", sub.created_by) == (Frequency.WEEKLY, "09:30", ADMIN)
    # Anyone may ask what the channel gets.
    status = await _say(admin_frugal, "digest", user_id="USOMEONE")
    assert status.startswith("This channel gets a weekly cost digest every Monday at 09:30 (Europe/Paris)")
    assert status.endswith(f"Next: {_next_monday_at(9, 30)}.")


async def test_subscribing_again_changes_or_keeps_the_schedule(admin_frugal):
    await _say(admin_frugal, "digest weekly")

    same = await _say(admin_frugal, "digest WEEKLY 09:00")
    changed = await _say(admin_frugal, "digest daily 18:05")

    assert same.startswith("This channel already gets a weekly cost digest every Monday at 09:00")
    assert changed.startswith("Done: this channel will get a daily cost digest every day at 18:05 (Europe/Paris)")
    assert "(was: a weekly cost digest every Monday at 09:00 (Europe/Paris))" in changed
    subs = await admin_frugal.container.digests.subscriptions()
    assert [(s.channel_id, s.frequency) for s in subs] == [("C1", Frequency.DAILY)]


async def test_off_stops_the_digests(admin_frugal):
    await _say(admin_frugal, "digest daily 08:00")

    off = await _say(admin_frugal, "digest off")
    again = await _say(admin_frugal, "digest off")

    assert (
        off
        == "Digests are off for this channel (it got a daily cost digest every day at 08:00 (Europe/Paris), covering the previous day)."
    )
    assert again == "This channel has no digest subscription; nothing changed."
    assert await admin_frugal.container.digests.subscription("T0001", "C1") is None


@pytest.mark.parametrize("text", ["digest daily", "digest off", "digest now"])
async def test_non_admins_are_refused_and_nothing_changes(admin_frugal, fake_slack, text):
    answer = await _say(admin_frugal, text, user_id="UPLAIN")

    assert answer == "Only Frugal admins and workspace admins can do that."
    assert await admin_frugal.container.digests.subscriptions() == []
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_workspace_admins_may_subscribe(admin_frugal, fake_slack):
    fake_slack.users["UOWNER"] = {"is_owner": True}

    answer = await _say(admin_frugal, "digest daily", user_id="UOWNER")

    assert answer.startswith("Done: this channel will get a daily cost digest every day at 09:00")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("digest daily 25:00", "`25:00` is not a time of day: use 24-hour HH:MM"),
        ("digest weekly 9am", "`9am` is not a time of day: use 24-hour HH:MM"),
        ("digest daily 09:60", "`09:60` is not a time of day"),
        ("digest monthly", "Unknown digest option `monthly`."),
        ("digest daily 09:00 17:00", "Give at most one time."),
        ("digest off 09:00", "`off` takes no time."),
    ],
)
async def test_bad_input_gets_the_usage_line_and_changes_nothing(admin_frugal, fake_slack, text, why):
    answer = await _say(admin_frugal, text)

    assert answer.startswith(why)
    assert "Usage: `/frugal digest <daily|weekly|off> [HH:MM]`" in answer
    assert answer.endswith(HELP_POINTER)
    assert await admin_frugal.container.digests.subscriptions() == []
    assert fake_slack.calls_to("users.info") == []  # refused before any admin lookup


async def test_now_posts_this_weeks_digest_with_its_chart(admin_frugal, fake_slack, fake_openai):
    _, name = await admin_frugal.command("/rewrite", "pls fix this", user_id="U7", channel_id="C1", team_id="T0001")
    await fake_slack.await_calls(f"response_url:{name}")

    answer = await _say(admin_frugal, "digest now")

    assert answer == "Posting this channel's cost digest for this week so far…"
    [post] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == "C1")
    assert post.params["text"].startswith("Cost so far this week · ")
    assert "over 1 request" in post.params["text"]
    blocks = post.params["blocks"]
    body = blocks if isinstance(blocks, str) else json.dumps(blocks, ensure_ascii=False)
    assert "`gpt-4.1-nano`" in body and "estimate" in body
    [complete] = await fake_slack.await_calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C1"
    assert len(fake_slack.uploads) == 1
    # `now` claims nothing: the scheduled digests are unaffected.
    assert await admin_frugal.container.digests.subscriptions() == []


async def test_now_for_a_daily_channel_covers_today(admin_frugal, fake_slack):
    await _say(admin_frugal, "digest daily 07:00")

    answer = await _say(admin_frugal, "digest now")

    assert answer == "Posting this channel's cost digest for today so far…"
    [post] = await fake_slack.await_calls("chat.postMessage")
    assert post.params["text"].startswith("No Frugal usage in <#C1> so far today")


async def test_now_tells_the_admin_when_slack_refuses(admin_frugal, fake_slack):
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "not_in_channel"})

    response, name = await admin_frugal.command(
        "/frugal", "digest now", user_id=ADMIN, channel_id="C1", team_id="T0001"
    )

    assert response.status == 200
    [reply] = await fake_slack.await_calls(f"response_url:{name}")
    assert reply.params["text"] == (
        "The digest could not be posted: Frugal is not a member of this channel: invite it with "
        "`/invite @Frugal`, then try again."
    )
    assert reply.params["response_type"] == "ephemeral"


async def test_now_shows_the_channels_quota_use(admin_frugal, fake_slack):
    await _say(admin_frugal, "quota set here 10 requests/day")
    _, name = await admin_frugal.command("/rewrite", "pls fix this", user_id="U7", channel_id="C1", team_id="T0001")
    await fake_slack.await_calls(f"response_url:{name}")

    await _say(admin_frugal, "digest now")

    [post] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == "C1")
    blocks = post.params["blocks"]
    body = blocks if isinstance(blocks, str) else json.dumps(blocks, ensure_ascii=False)
    assert "*Quota*\\n• This channel, per day: 1 of 10 requests used (10%)" in body


@pytest.mark.parametrize("time_word", ["٠٩:٠٠", "𝟗:𝟎𝟎", "０９:００", "09:٠٠"])
async def test_a_time_in_other_digits_is_refused_and_changes_nothing(admin_frugal, time_word):
    answer = await _say(admin_frugal, f"digest daily {time_word}")

    assert answer.startswith(f"`{time_word}` is not a time of day: use 24-hour HH:MM")
    assert await admin_frugal.container.digests.subscriptions() == []


async def test_subscribing_a_channel_frugal_is_not_in_warns_at_once(admin_frugal, fake_slack):
    fake_slack.channels["C5"] = {"is_member": False}

    response, name = await admin_frugal.command(
        "/frugal", "digest daily", user_id=ADMIN, channel_id="C5", team_id="T0001"
    )

    assert (await response.json())["text"].startswith("Done: this channel will get a daily cost digest")
    [warning] = await fake_slack.await_calls(f"response_url:{name}")
    assert warning.params["text"] == NOT_A_MEMBER_WARNING and warning.params["response_type"] == "ephemeral"
    [info] = fake_slack.calls_to("conversations.info")
    assert info.params["channel"] == "C5"


async def test_subscribing_a_private_channel_frugal_cannot_see_warns_too(admin_frugal, fake_slack):
    fake_slack.fail("conversations.info", status=200, headers={}, body={"ok": False, "error": "channel_not_found"})

    _, name = await admin_frugal.command("/frugal", "digest weekly", user_id=ADMIN, channel_id="G5", team_id="T0001")

    [warning] = await fake_slack.await_calls(f"response_url:{name}")
    assert warning.params["text"] == NOT_A_MEMBER_WARNING


async def test_subscribing_a_channel_frugal_is_in_gets_no_warning(admin_frugal, fake_slack):
    fake_slack.channels["C6"] = {"is_member": True}

    _, name = await admin_frugal.command("/frugal", "digest daily", user_id=ADMIN, channel_id="C6", team_id="T0001")

    await fake_slack.await_calls("conversations.info")
    await settle_listeners()
    assert fake_slack.calls_to(f"response_url:{name}") == []


async def test_a_digest_names_its_top_users_without_pinging_or_linking(admin_frugal, fake_slack):
    fake_slack.users["U7"] = {"profile": {"display_name": "<!channel> <https://evil.example|click me> & co"}}
    _, name = await admin_frugal.command("/rewrite", "pls fix this", user_id="U7", channel_id="C1", team_id="T0001")
    await fake_slack.await_calls(f"response_url:{name}")

    await _say(admin_frugal, "digest now")

    [post] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == "C1")
    body = json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "1. &lt;!channel&gt; &lt;https://evil.example|click me&gt; &amp; co — " in body
    assert "<!channel>" not in body and "<https://evil" not in body


async def test_now_shows_the_forecast_of_a_usd_limit(admin_frugal, fake_slack):
    await _say(admin_frugal, "quota set here $5/month")
    _, name = await admin_frugal.command("/rewrite", "pls fix this", user_id="U7", channel_id="C1", team_id="T0001")
    await fake_slack.await_calls(f"response_url:{name}")

    await _say(admin_frugal, "digest now")

    [post] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == "C1")
    blocks = post.params["blocks"]
    body = blocks if isinstance(blocks, str) else json.dumps(blocks, ensure_ascii=False)
    # Which of its cases it is depends on the day (tests/services/test_forecast.py); that it is there, not.
    assert "Forecast for $5.00 per month _(this channel's own)_: " in body


async def test_now_at_a_fixed_time_forecasts_each_usd_limit(start_frugal, migrated_url, fake_slack, monkeypatch):
    now = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)  # 16:30 in Paris: 592.5 of November's 720 hours
    monkeypatch.setattr(composition, "QuotaService", functools.partial(QuotaService, clock=lambda: now))
    monkeypatch.setattr(composition, "DigestService", functools.partial(DigestService, clock=lambda: now))
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS=ADMIN, FRUGAL_TIMEZONE="Europe/Paris")
    ledger = SqlLedger(make_sessionmaker(frugal.container.engine))
    for i, (at, cost) in enumerate([(now - timedelta(days=3), "4.20"), (now - timedelta(hours=1), "0.30")]):
        await ledger.record(
            LedgerEntry(
                team_id="T0001",
                channel_id="C1",
                user_id="U7",
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
                created_at=at,
            )
        )
    await _say(frugal, "quota set here $5/month")
    await _say(frugal, "quota set default 100 requests/day")  # not in dollars: no forecast

    await _say(frugal, "digest now")

    [post] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == "C1")
    blocks = post.params["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    [forecast] = [b["text"]["text"] for b in blocks if "text" in b and "Forecast" in str(b["text"].get("text"))]
    # $4.50 at that pace is $5.47 by the month's end; $5 is spent after 658.3 hours, on Nov 28 in Paris.
    assert forecast == (
        "• Forecast for $5.00 per month _(this channel's own)_: about $5.47 by the end of the month at this pace: "
        "*over the limit around Nov 28*."
    )
