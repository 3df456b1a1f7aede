"""/frugal quota set|show|clear with options (warn, alert, downgrade) and per-person targets, end to end."""

from __future__ import annotations

import pytest

from bot.ports.quota import Metric, Mode, Period
from bot.ports.quota_store import LimitRecord, Scope
from bot.slack.grammar import QUOTA_USAGE
from tests.slack.listeners.quota_commands import CHANNEL
from tests.slack.listeners.quota_commands import limits as _limits
from tests.slack.listeners.quota_commands import quota as _quota
from tests.slack.listeners.quota_commands import text_of as _text

ANA = "U0ANA1"


async def test_options_are_stored_and_shown(frugal, admins):
    body = await _quota(frugal, "set here $5/month warn alert 50,80,100")

    assert body["text"].startswith(f"Done: <#{CHANNEL}> may use at most *$5.00 per month*.")
    assert (
        "It never refuses, only alerts; the channel (or the person) and the admins are told at 50 %, 80 % and 100 %."
        in body["text"]
    )
    assert await _limits(frugal) == [
        LimitRecord(Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, 5, mode=Mode.WARN, alerts=(50, 80, 100))
    ]
    shown = _text(await _quota(frugal, "show here"))
    assert "$0.00 of $5.00 per month used · *$5.00 left* · resets <!date^" in shown
    assert "warn only · alerts at 50 %, 80 % and 100 % _(this channel's own)_" in shown


async def test_downgrade_and_alert_off(frugal, admins):
    body = await _quota(frugal, "set here 200 requests/day downgrade 90% alert off")

    assert "Past 90 % requests go to the cheapest model that fits; no alerts are sent." in body["text"]
    assert await _limits(frugal) == [
        LimitRecord(Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 200, alerts=(), downgrade=90)
    ]
    assert "cheapest model past 90 % · no alerts" in _text(await _quota(frugal, "show"))


async def test_setting_again_replaces_the_options_too(frugal, admins):
    await _quota(frugal, "set here $5/month warn alert 50")

    await _quota(frugal, "set here $6/month")

    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, 6)]


@pytest.mark.parametrize("escaped", [f"<@{ANA}|ana>", f"<@{ANA}>"])
async def test_a_person_named_as_slack_escapes_them(frugal, admins, escaped):
    body = await _quota(frugal, f"set {escaped} 50 requests/day")

    assert body["text"].startswith(f"Done: <@{ANA}> may use at most *50 requests per day* in every channel together.")
    assert "So far: 0 of 50 requests per day used" in body["text"]
    assert await _limits(frugal, Scope.USER, ANA) == [LimitRecord(Scope.USER, ANA, Metric.REQUESTS, Period.DAY, 50)]
    assert await _limits(frugal) == []

    shown = _text(await _quota(frugal, f"show {escaped}"))
    assert f"*Quotas of <@{ANA}>*" in shown and "0 of 50 requests per day used" in shown and "(their own)" in shown

    cleared = await _quota(frugal, f"clear {escaped}")
    assert cleared["text"] == (
        f"Removed 1 limit from <@{ANA}>. No per-person quota applies to them now (channel quotas still do)."
    )
    assert await _limits(frugal, Scope.USER, ANA) == []


async def test_the_per_person_default(frugal, admins):
    body = await _quota(frugal, "set default-user $1/day alert 100")

    assert body["text"].startswith("Done: the per-person default is now *$1.00 per day* for every person without")
    assert await _limits(frugal, Scope.DEFAULT_USER, "") == [
        LimitRecord(Scope.DEFAULT_USER, "", Metric.USD, Period.DAY, 1, alerts=(100,))
    ]
    assert "• $1.00 per day · alerts at 100 %" in _text(await _quota(frugal, "show default-user"))
    # A person without their own limit gets the default; a channel's show lists only channel limits.
    assert "(per-person default)" in _text(await _quota(frugal, f"show <@{ANA}>"))
    assert "No quota applies" in _text(await _quota(frugal, "show here"))

    # A person's own limit of the same kind replaces the default for them.
    await _quota(frugal, f"set <@{ANA}> $3/day")
    shown = _text(await _quota(frugal, f"show <@{ANA}>"))
    assert "$3.00 per day" in shown and "per-person default" not in shown
    back = await _quota(frugal, f"clear <@{ANA}>")
    assert back["text"].startswith(f"Removed 1 limit from <@{ANA}>. What applies now: $0.00 of $1.00 per day used")
    assert "(per-person default)" in back["text"]

    gone = await _quota(frugal, "clear default-user")
    assert gone["text"].startswith("Removed 1 limit from the per-person default.")
    assert await _limits(frugal, Scope.DEFAULT_USER, "") == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("set here $5/month loud", "`loud` is not a quota option"),
        ("set here $5/month alert", "`alert` needs percentages"),
        ("set here $5/month alert 50,,80", "`alert` needs percentages"),
        ("set here $5/month alert 150", "`150` is not an alert percentage"),
        ("set here $5/month alert <!here>", "`that` is not an alert percentage"),
        ("set here $5/month downgrade", "`downgrade` needs a share of the limit"),
        ("set here $5/month downgrade 100%", "`100%` is not a share of the limit"),
        ("set here $5/month warn warn", "`warn` is given twice"),
        ("set here $5/month warn downgrade 90%", "use `warn` or `downgrade`, not both"),
        ("set here warn", "Give the limit first"),
        ("set @ana 5 requests/day", "Pick the person from Slack's list"),
        ("set <@U12|x 5 requests/day", "Name the quota's target"),
    ],
)
async def test_bad_options_get_a_message_and_change_nothing(frugal, admins, text, why):
    await _quota(frugal, "set here 200 requests/day")

    body = await _quota(frugal, text)

    assert why in body["text"], body["text"]
    assert "Nothing was changed." in body["text"] and body["text"].endswith(QUOTA_USAGE)
    assert "<!here>" not in body["text"]
    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 200)]
    assert await _limits(frugal, Scope.DEFAULT_USER, "") == []


async def test_a_user_id_longer_than_slacks_is_refused(frugal, admins):
    long_id = "U" + "1" * 40

    body = await _quota(frugal, f"set <@{long_id}> 5 requests/day")

    assert "That user ID is 41 characters long; Slack's are at most 32." in body["text"]
    assert await _limits(frugal, Scope.USER, long_id) == []
