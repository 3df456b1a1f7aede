"""A quota set through the service refuses a signed /rewrite over HTTP, through real Bolt, charging nothing."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from bot.infra.db.tables import LedgerRow
from bot.ports.quota import Metric
from bot.ports.quota_store import Scope
from bot.scheduler import build_scheduler
from bot.services.quota_spec import parse_limit
from tests.fakes.openai_server import Reply


async def test_the_request_over_the_limit_is_refused_and_nothing_is_charged(frugal, fake_openai, fake_slack):
    quota = frugal.container.quota
    await quota.set_limit("T0001", Scope.CHANNEL, "C0001", parse_limit("1 request/day"), set_by="U9")
    fake_openai.script("gpt-4.1-nano", Reply("Hello there.", prompt_tokens=20, completion_tokens=3))

    _, first = await frugal.command("/rewrite", "hello")
    [answer] = await fake_slack.await_calls(f"response_url:{first}")
    _, second = await frugal.command("/rewrite", "hello again")
    [refusal] = await fake_slack.await_calls(f"response_url:{second}")

    assert answer.params["text"] == "Hello there."
    assert "has no room for this request" in refusal.params["text"]
    assert "Nothing was charged" in refusal.params["text"]
    assert len(fake_openai.requests) == 1
    async with frugal.container.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(LedgerRow))).scalar_one() == 1
    [use] = await quota.channel_quotas("T0001", "C0001", datetime.now(timezone.utc))
    assert (use.metric, use.used, use.reserved) == (Metric.REQUESTS, 1, 0)


async def test_every_replica_expires_lost_holds_every_minute(frugal):
    container = frugal.container
    assert container.quota.expire in container.minute_jobs
    scheduler = build_scheduler(container.settings, container.digests, minute_jobs=container.minute_jobs)
    [job] = [job for job in scheduler.apscheduler.get_jobs() if job.id.startswith("minute:")]
    assert job.trigger.interval.total_seconds() == 60 and list(job.args) == [container.quota.expire]
