"""/frugal quota set|show|clear end to end: signed commands in, the real quota engine, admins decided by users.info."""

from __future__ import annotations

import pytest

from bot.ports.quota import Metric, Period
from bot.ports.quota_store import LimitRecord, Scope
from bot.slack.grammar import HELP_POINTER, QUOTA_USAGE
from bot.slack.listeners.frugal import ID_TOO_LONG
from tests.slack.listeners.quota_commands import CHANNEL
from tests.slack.listeners.quota_commands import limits as _limits
from tests.slack.listeners.quota_commands import quota as _quota
from tests.slack.listeners.quota_commands import text_of as _text

MEMBER = "UMEMBER1"


async def test_admin_sets_a_limit_here_and_sees_it(frugal, admins):
    body = await _quota(frugal, "set here $5/month")

    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(f"Done: <#{CHANNEL}> may use at most *$5.00 per month*.")
    assert "$0.00 of $5.00 per month used" in body["text"] and "<!date^" in body["text"]
    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, 5)]

    shown = _text(await _quota(frugal, "show here"))
    assert f"*Quotas of <#{CHANNEL}>*" in shown
    assert "$0.00 of $5.00 per month used · *$5.00 left* · resets <!date^" in shown
    assert "{date_short_pretty} at {time}|" in shown and "(this channel's own)" in shown


async def test_show_without_target_is_this_channel(frugal, admins):
    await _quota(frugal, "set here 200 requests/day")

    shown = _text(await _quota(frugal, "show"))

    assert "0 of 200 requests per day used · *200 requests left*" in shown


@pytest.mark.parametrize("escaped", ["<#C0777|ops>", "<#C0777>"])
async def test_a_channel_named_as_slack_escapes_it(frugal, admins, escaped):
    body = await _quota(frugal, f"set {escaped} 100k tokens/week")

    assert body["text"].startswith("Done: <#C0777> may use at most *100,000 tokens per week*.")
    assert await _limits(frugal, target="C0777") == [
        LimitRecord(Scope.CHANNEL, "C0777", Metric.TOKENS, Period.WEEK, 100_000)
    ]
    assert await _limits(frugal) == []
    assert "100,000 tokens left" in _text(await _quota(frugal, f"show {escaped}"))


async def test_the_workspace_default_applies_to_channels_without_their_own(frugal, admins):
    body = await _quota(frugal, "set default 5 usd/month")

    assert body["text"].startswith("Done: the workspace default is now *$5.00 per month* for every channel")
    assert await _limits(frugal, Scope.DEFAULT, "") == [LimitRecord(Scope.DEFAULT, "", Metric.USD, Period.MONTH, 5)]
    assert "• $5.00 per month" in _text(await _quota(frugal, "show default"))
    assert "(workspace default)" in _text(await _quota(frugal, "show here"))


async def test_setting_again_replaces_and_says_what_it_was(frugal, admins):
    await _quota(frugal, "set here $5/month")

    body = await _quota(frugal, "set here $7.50/month")

    assert "*$7.50 per month* (was $5.00 per month)" in body["text"]
    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.USD, Period.MONTH, 7.5)]


async def test_clear_one_kind_then_all(frugal, admins):
    await _quota(frugal, "set here 200 requests/day")
    await _quota(frugal, "set here $5/month")
    await _quota(frugal, "set default 1000 requests/day")

    one = await _quota(frugal, "clear here requests/day")
    assert one["text"].startswith(f"Removed 1 limit of requests/day from <#{CHANNEL}>. What applies now: ")
    assert "1,000 requests per day" in one["text"]  # the default takes over
    assert [r.metric for r in await _limits(frugal)] == [Metric.USD]

    rest = await _quota(frugal, "clear here")
    assert rest["text"].startswith(f"Removed 1 limit from <#{CHANNEL}>.")
    assert await _limits(frugal) == []

    none = await _quota(frugal, "clear here")
    assert none["text"] == f"There was no limit on <#{CHANNEL}> to clear; nothing was changed."

    gone = await _quota(frugal, "clear default")
    assert gone["text"].startswith("Removed 1 limit from the workspace default.")
    assert "No quota applies" in _text(await _quota(frugal, "show here"))


async def test_frugal_admins_variable_grants_admin_rights(start_frugal, migrated_url, fake_slack):
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UOPS1")

    body = await _quota(frugal, "set here 10 requests/day", user="UOPS1")

    assert body["text"].startswith("Done:")
    assert fake_slack.calls_to("users.info") == []


@pytest.mark.parametrize("text", ["set here $5/month", "show here", "clear here", "set default 10 requests/day"])
async def test_non_admins_are_refused_and_nothing_changes(frugal, admins, text):
    await _quota(frugal, "set here 200 requests/day")

    body = await _quota(frugal, text, user=MEMBER)

    assert body["text"] == "Only Frugal admins and workspace admins can do that."
    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 200)]
    assert await _limits(frugal, Scope.DEFAULT, "") == []
    [check] = admins.calls_to("users.info", lambda c: c.params.get("user") == MEMBER)
    assert check.params["user"] == MEMBER


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("set here 5 bananas/day", "`bananas` is not a unit"),
        ("set here $-1/month", "is not a limit like"),
        ("set here 0 requests/day", "more than zero"),
        ("set here 10 requests/fortnight", "`fortnight` is not a period"),
        ("set here 1.5 requests/day", "whole number"),
        ("set", "`set` needs a target and a limit"),
        ("set here", "`set` needs a target and a limit"),
        ("set everywhere $5/month", "Name the quota's target"),
        ("set #general $5/month", "Pick the channel from Slack's list"),
        ("clear", "`clear` needs a target"),
        ("clear here bananas/day", "is not like `requests/day`"),
        ("show here there", "at most one target"),
        ("frobnicate here", "`frobnicate` is not a quota action"),
        ("<!channel>", "`that` is not a quota action"),
        ("", "Say what to do"),
    ],
)
async def test_malformed_commands_get_the_usage_line_and_change_nothing(frugal, admins, text, why):
    await _quota(frugal, "set here 200 requests/day")

    body = await _quota(frugal, text)

    assert why in body["text"]
    assert "Nothing was changed." in body["text"]
    assert body["text"].endswith(QUOTA_USAGE)
    assert QUOTA_USAGE.endswith(HELP_POINTER)
    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 200)]
    assert await _limits(frugal, Scope.DEFAULT, "") == []


async def test_malformed_commands_need_no_admin_lookup(frugal, fake_slack):
    body = await _quota(frugal, "set here 5 bananas/day", user=MEMBER)

    assert body["text"].endswith(QUOTA_USAGE)
    assert fake_slack.calls_to("users.info") == []


@pytest.mark.parametrize(
    ("limit", "problem"),
    [
        ("1,,0 requests/day", "`1,,0` is not a number: commas may only separate thousands"),
        ("1,0 requests/day", "`1,0` is not a number"),
        (",100 tokens/week", "is not a limit like"),
        ("٥ requests/day", "is not a limit like"),
        ("$𝟓/month", "is not a limit like"),
    ],
)
async def test_numbers_are_ascii_digits_with_thousands_commas_only(frugal, admins, limit, problem):
    body = await _quota(frugal, f"set here {limit}")

    assert problem in body["text"] and "Nothing was changed." in body["text"]
    assert await _limits(frugal) == []


async def test_thousands_separators_are_accepted(frugal, admins):
    await _quota(frugal, "set here 1,000 requests/day")

    assert await _limits(frugal) == [LimitRecord(Scope.CHANNEL, CHANNEL, Metric.REQUESTS, Period.DAY, 1000)]


async def test_a_channel_id_longer_than_slacks_is_refused_with_a_message(frugal, admins):
    long_id = "C" + "1" * 40

    body = await _quota(frugal, f"set <#{long_id}|ops> 5 requests/day")

    assert "That channel ID is 41 characters long; Slack's are at most 32." in body["text"]
    assert "Nothing was changed." in body["text"]
    assert await _limits(frugal, target=long_id) == []


async def test_a_command_from_a_channel_id_longer_than_slacks_is_refused(frugal, admins):
    body = await _quota(frugal, "set here 5 requests/day", channel="C" + "2" * 40)

    assert body["text"] == ID_TOO_LONG


async def test_an_echoed_limit_never_pings(frugal, admins):
    body = await _quota(frugal, "set here <!channel> requests/day")

    assert "<!channel>" not in body["text"] and "@channel" in body["text"]
