"""A quota set through the service refuses a signed /rewrite over HTTP, through real Bolt, charging nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select, text

from bot.infra.db.tables import LedgerRow
from bot.ports.quota import Metric
from bot.ports.quota_store import Scope
from bot.scheduler import build_scheduler
from bot.services.quota_spec import parse_limit
from tests.bolt_tasks import settle_listeners
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


async def test_usd_counters_hold_exact_decimals_after_overlapping_requests(frugal, fake_openai, fake_slack):
    quota = frugal.container.quota
    await quota.set_limit("T0001", Scope.CHANNEL, "C0001", parse_limit("5 usd/day"), set_by="U9")
    fake_openai.latency = 0.05  # the requests' holds overlap, so each settle subtracts from a sum of others

    async def one(i: int) -> str:
        _, name = await frugal.command("/rewrite", "word " * (i + 1) + f"number {i}")
        [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
        return reply.params["text"]

    texts = await asyncio.gather(*(one(i) for i in range(16)))
    await settle_listeners()

    assert all(answer.startswith("[gpt-") for answer in texts)
    async with frugal.container.engine.connect() as conn:
        costs = (await conn.execute(select(LedgerRow.cost_usd).where(LedgerRow.outcome == "ok"))).scalars().all()
        # As stored: on SQLite, what its NUMERIC kept was a float, and sums of floats drift.
        [(used, reserved)] = (
            await conn.execute(text("SELECT CAST(used AS TEXT), CAST(reserved AS TEXT) FROM quota_counters"))
        ).all()
    spent = sum(costs, Decimal(0))
    assert len(costs) == 16 and spent > 0
    assert "e" not in used.lower() + reserved.lower()
    assert (Decimal(used), Decimal(reserved)) == (spent, 0)
    [use] = await quota.channel_quotas("T0001", "C0001", datetime.now(timezone.utc))
    assert (use.metric, use.used, use.reserved) == (Metric.USD, spent, 0)
