"""The refusal message of a request over quota: through /rewrite and /classify end to end, and its wording."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from bot.infra.db.tables import LedgerRow
from bot.ports.completion import CompletionFailed
from bot.ports.quota import Metric, Period, QuotaUse
from bot.ports.quota_store import Scope
from bot.services.errors import EmptyInput
from bot.services.quota_spec import parse_limit
from bot.slack.failures import failure_text, quota_refusal
from tests.bolt_tasks import settle_listeners

DATE_TOKEN = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\} at \{time\}\|(\d{4}-\d\d-\d\d \d\d:\d\d UTC)>")
DEC_1 = datetime(2026, 12, 1, tzinfo=timezone.utc)


async def _rewrite(frugal, fake_slack, text: str) -> str:
    _, name = await frugal.command("/rewrite", text, channel_id="C0001", user_id="U1")
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    return answer.params["text"]


async def test_rewrite_over_the_channel_quota_is_refused_without_a_model_call(frugal, fake_openai, fake_slack):
    await frugal.container.quota.set_limit(
        "T0001", Scope.CHANNEL, "C0001", parse_limit("1 request/day"), set_by="UADMIN"
    )

    first = await _rewrite(frugal, fake_slack, "first one")
    refused = await _rewrite(frugal, fake_slack, "second one")

    assert first == "[gpt-4.1-nano] first one"
    assert refused.startswith(
        ":no_entry: This channel's quota of *1 request per day* has no room for this request: "
        "1 of 1 request used, so it is used up. It resets <!date^"
    )
    assert refused.endswith("Nothing was charged for this request.")
    [(unix, fallback)] = DATE_TOKEN.findall(refused)
    [use] = await frugal.container.quota.channel_quotas("T0001", "C0001", datetime.now(timezone.utc))
    assert int(unix) == int(use.resets_at.timestamp())
    assert fallback == use.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    assert len(fake_openai.requests) == 1
    assert use.used == 1
    async with frugal.container.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(LedgerRow)) == 1


async def test_classify_over_the_default_usd_quota_is_refused_the_same_way(frugal, fake_openai, fake_slack):
    await frugal.container.quota.set_limit("T0001", Scope.DEFAULT, "", parse_limit("$0.000001/month"), set_by="UADMIN")

    _, name = await frugal.command("/classify", "[bug, praise] it crashes", channel_id="C0002")
    [answer] = await fake_slack.await_calls(f"response_url:{name}")

    assert answer.params["text"].startswith(
        ":no_entry: The workspace's default per-channel quota of *$0.000001 per month*"
    )
    assert "$0.00 of $0.000001 used, with only $0.000001 left, less than this request may need" in answer.params["text"]
    assert DATE_TOKEN.search(answer.params["text"])
    await settle_listeners()
    assert fake_openai.requests == []


def _use(scope: str, metric: Metric, limit: str, used: str) -> QuotaUse:
    return QuotaUse(
        scope,
        {"channel": "C1", "user": "U1"}.get(scope, ""),
        metric,
        Period.MONTH,
        Decimal(limit),
        Decimal(used),
        datetime(2026, 11, 1, tzinfo=timezone.utc),
        DEC_1,
    )


def test_the_reset_is_a_slack_date_in_the_readers_zone_with_a_utc_fallback():
    text = quota_refusal(_use("channel", Metric.USD, "5", "5"))

    assert "It resets <!date^1796083200^{date_short_pretty} at {time}|2026-12-01 00:00 UTC>." in text


def test_each_scope_and_metric_reads_plainly():
    assert quota_refusal(_use("user", Metric.TOKENS, "100000", "99500")).startswith(
        ":no_entry: Your personal quota of *100,000 tokens per month* has no room for this request: "
        "99,500 of 100,000 tokens used, with only 500 tokens left, less than this request may need."
    )
    assert "$4.99 of $5.00 used, with only $0.01 left" in quota_refusal(_use("channel", Metric.USD, "5", "4.99"))
    assert "200 of 200 requests used, so it is used up" in quota_refusal(_use("default", Metric.REQUESTS, "200", "200"))
    per_person_default = QuotaUse("user", "", Metric.USD, Period.DAY, Decimal(1), Decimal(1), DEC_1, DEC_1)
    assert quota_refusal(per_person_default).startswith(
        ":no_entry: The workspace's default per-person quota of *$1.00 per day* has no room"
    )


def test_other_failures_keep_their_own_words():
    assert failure_text(EmptyInput("There is no text to work on.")) == "There is no text to work on."
    assert failure_text(CompletionFailed("No model could answer.")) == "No model could answer."
