"""Two replicas on one database under concurrent load: quotas exact, no duplicate answers, digests posted once.

Each replica is its own Container (engine, router, quota service, Bolt app) on its own port, as two
processes behind a load balancer would be; they share only the database and the outside fakes.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import update

from bot.infra.db.digest_tables import DigestSubscriptionRow
from bot.ports.digest_store import Frequency
from bot.ports.quota import Metric
from bot.ports.quota_store import Scope
from bot.services.quota_spec import parse_limit
from tests.fakes.openai_server import RecordedRequest, Reply
from tests.fakes.slack_signing import app_mention_event, event_callback, slash_command
from tests.faults.conftest import ledger_rows, settle_listeners

TEAM, CHANNEL, ADMIN = "T0001", "C0001", "UADMIN1"
MODEL_DELAY = 0.1  # long enough that the replicas' requests overlap at the model
REFUSAL = "has no room for this request"
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
_seq = itertools.count(1)


@pytest.fixture
async def replicas(start_frugal, migrated_url, fake_openai):
    """Two Frugal replicas on the same migrated database, the model answering after a short delay."""
    fake_openai.latency = MODEL_DELAY
    return await start_frugal(migrated_url), await start_frugal(migrated_url)


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_seq)}x{uuid.uuid4().hex[:6]}"


async def _rewrite_storm(replicas, fake_slack, count: int, channel: str = CHANNEL) -> list[str]:
    """`count` distinct /rewrite commands at once, alternating between the replicas; each one's reply text."""

    async def one(i: int) -> str:
        response, name = await replicas[i % 2].command("/rewrite", f"storm message {i}", channel_id=channel)
        assert response.status == 200
        [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
        return reply.params["text"]

    texts = await asyncio.gather(*(one(i) for i in range(count)))
    await settle_listeners()
    return list(texts)


async def test_a_request_quota_is_exact_across_replicas(replicas, fake_openai, fake_slack):
    limit, sent = 5, 20
    a = replicas[0]
    await a.container.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit(f"{limit} requests/day"), set_by=ADMIN)

    texts = await _rewrite_storm(replicas, fake_slack, sent)

    answered = [t for t in texts if t.startswith("[gpt-4.1-nano] storm message")]
    refused = [t for t in texts if REFUSAL in t]
    assert (len(answered), len(refused)) == (limit, sent - limit)
    assert all("Nothing was charged" in t for t in refused)
    assert len(fake_openai.requests) == limit
    ok = [r for r in await ledger_rows(a) if r.outcome == "ok"]
    assert len(ok) == limit == len({r.request_key for r in ok})
    for replica in replicas:  # both replicas read the same counter, with no hold left behind
        [use] = await replica.container.quota.channel_quotas(TEAM, CHANNEL, datetime.now(timezone.utc))
        assert (use.metric, use.used, use.reserved, use.limit) == (Metric.REQUESTS, limit, 0, limit)


async def test_a_quota_set_by_an_admin_on_one_replica_binds_the_other(replicas, fake_openai, fake_slack):
    a, b = replicas
    fake_slack.users[ADMIN] = {"is_admin": True}
    response, _ = await a.command("/frugal", "quota set here 3 requests/day", user_id=ADMIN, channel_id="C0002")
    assert response.status == 200 and (await response.json())["text"].startswith("Done:")

    texts = await _rewrite_storm((b, a), fake_slack, 9, channel="C0002")

    assert sum(t.startswith("[gpt-4.1-nano]") for t in texts) == 3 == len(fake_openai.requests)
    assert sum(REFUSAL in t for t in texts) == 6


def _costly_reply(request: RecordedRequest) -> Reply:
    # Spend all the output the request allows: the real cost is as near its reserved worst case as it gets.
    words = [m["content"] for m in request.json["messages"] if m["role"] == "user"][-1]
    return Reply(f"[{request.json['model']}] {words}", completion_tokens=request.json["max_tokens"])


async def test_a_usd_quota_is_never_overspent_across_replicas(replicas, fake_openai, fake_slack):
    a, b = replicas
    fake_openai.default = _costly_reply
    # Room for about three of these calls at gpt-4.1-nano's price, the worst case held until settled.
    limit = Decimal("0.0012")
    await b.container.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit(f"{limit} usd/day"), set_by=ADMIN)

    texts = await _rewrite_storm(replicas, fake_slack, 16)

    answered = [t for t in texts if t.startswith("[gpt-4")]
    refused = [t for t in texts if REFUSAL in t]
    assert len(answered) + len(refused) == 16 and answered and refused
    ok = [r for r in await ledger_rows(a) if r.outcome == "ok"]
    assert len(ok) == len(answered) == len(fake_openai.requests)
    spent = sum((r.cost_usd for r in ok), Decimal(0))
    assert 0 < spent <= limit
    [use] = await a.container.quota.channel_quotas(TEAM, CHANNEL, datetime.now(timezone.utc))
    assert (use.metric, use.used, use.reserved) == (Metric.USD, spent, 0)


async def _post_to_both(replicas, body: str, content_type: str) -> None:
    """The same delivery to both replicas at the same instant, as a load balancer resending it would."""
    responses = await asyncio.gather(*(replica.post(body, content_type) for replica in replicas))
    assert [r.status for r in responses] == [200, 200]


async def test_each_delivery_posted_to_both_replicas_is_answered_once(replicas, fake_openai, fake_slack):
    a = replicas[0]
    commands = [
        (
            slash_command(
                "/rewrite",
                f"twice sent command {i}",
                trigger_id=f"{_unique('trg')}.1.2",
                response_url=fake_slack.response_url(name := _unique("dup")),
            ),
            name,
        )
        for i in range(6)
    ]
    mentions = [
        (
            event_callback(
                event := app_mention_event(f"<@UBOT> rewrite twice sent mention {i}", channel="C0003"),
                event_id=_unique("Ev"),
            ),
            event["ts"],
        )
        for i in range(6)
    ]
    deliveries = [body for body, _ in commands] + [body for body, _ in mentions]

    await asyncio.gather(*(_post_to_both(replicas, *body) for body in deliveries))
    for _, name in commands:
        await fake_slack.await_calls(f"response_url:{name}", timeout=20)
    await fake_slack.await_calls("chat.postMessage", count=len(mentions), timeout=20)
    await settle_listeners()
    # Slack's own retries arrive later, at either replica: dropped too.
    for i, body in enumerate(deliveries):
        response = await replicas[i % 2].post(*body, headers=RETRY)
        assert response.status == 200
    await settle_listeners()

    assert len(fake_openai.requests) == len(deliveries)
    asked = sorted(r.json["messages"][-1]["content"] for r in fake_openai.requests)
    assert asked == sorted(
        [f"twice sent command {i}" for i in range(6)] + [f"twice sent mention {i}" for i in range(6)]
    )
    for _, name in commands:
        [reply] = fake_slack.calls_to(f"response_url:{name}")
        assert reply.params["text"].startswith("[gpt-4.1-nano] twice sent command")
    for _, ts in mentions:
        [reply] = fake_slack.calls_to("chat.postMessage", lambda c, ts=ts: c.params.get("thread_ts") == ts)
        assert reply.params["text"].startswith("[gpt-4.1-nano] twice sent mention")
    ok = [r for r in await ledger_rows(a) if r.outcome == "ok"]
    assert len(ok) == len(deliveries) == len({r.request_key for r in ok})


async def test_a_due_digest_is_posted_once_by_two_replicas_ticking_together(replicas, fake_slack):
    a, b = replicas
    now = datetime.now(timezone.utc)
    # Scheduled a minute ago (counted in FRUGAL_TIMEZONE, UTC by default), by a subscription made yesterday.
    send_at = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
    await a.container.digests.subscribe(TEAM, "C0DIGEST", ADMIN, Frequency.DAILY, time(send_at.hour, send_at.minute))
    async with a.container.engine.begin() as conn:
        await conn.execute(
            update(DigestSubscriptionRow)
            .where(DigestSubscriptionRow.channel_id == "C0DIGEST")
            .values(created_at=now - timedelta(days=1))
        )

    posted = await asyncio.gather(
        a.container.digests.tick(), b.container.digests.tick(), b.container.digests.tick(), a.container.digests.tick()
    )

    assert sum(posted) == 1
    [digest] = fake_slack.calls_to("chat.postMessage", lambda c: c.params.get("channel") == "C0DIGEST")
    assert digest.params.get("text")
    assert sum(await asyncio.gather(a.container.digests.tick(), b.container.digests.tick())) == 0
    assert len(fake_slack.calls_to("chat.postMessage", lambda c: c.params.get("channel") == "C0DIGEST")) == 1
