"""Quota alerts with two replicas on one database: a burst of concurrent requests crossing a threshold alerts once."""

from __future__ import annotations

import asyncio

import pytest

from bot.ports.quota_store import Scope
from bot.services.quota_spec import parse_setting
from tests.faults.conftest import settle_listeners

TEAM, CHANNEL, ADMIN = "T0001", "C0001", "UADMIN1"
MODEL_DELAY = 0.1  # long enough that the replicas' requests overlap at the model


@pytest.fixture
async def replicas(start_frugal, migrated_url, fake_openai):
    """Two Frugal replicas on the same migrated database, each DMing ADMIN its alerts."""
    fake_openai.latency = MODEL_DELAY
    return await start_frugal(migrated_url, FRUGAL_ADMINS=ADMIN), await start_frugal(migrated_url, FRUGAL_ADMINS=ADMIN)


async def _storm(replicas, fake_slack, count: int, user_of=lambda i: f"U0P{i % 3}") -> list[str]:
    """`count` distinct /rewrite commands at once, alternating between the replicas; each one's reply text."""

    async def one(i: int) -> str:
        response, name = await replicas[i % 2].command(
            "/rewrite", f"storm message {i}", channel_id=CHANNEL, user_id=user_of(i)
        )
        assert response.status == 200
        [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
        return reply.params["text"]

    texts = await asyncio.gather(*(one(i) for i in range(count)))
    await settle_listeners()
    for replica in replicas:
        await replica.container.alerts.aclose()  # the alerts still being sent
    return list(texts)


def _posts(fake_slack, channel: str) -> list[str]:
    return [
        c.params["text"] for c in fake_slack.calls_to("chat.postMessage", lambda c: c.params.get("channel") == channel)
    ]


async def test_concurrent_requests_crossing_a_threshold_alert_once(replicas, fake_openai, fake_slack):
    a = replicas[0]
    await a.container.quota.set_limit(
        TEAM, Scope.CHANNEL, CHANNEL, parse_setting("8 requests/day alert 50,100"), set_by=ADMIN
    )

    texts = await _storm(replicas, fake_slack, 14)

    assert sum(not t.startswith(":no_entry:") for t in texts) == 8
    channel = _posts(fake_slack, CHANNEL)
    assert len([t for t in channel if "has reached 50 %" in t]) == 1, channel
    assert len([t for t in channel if "has reached 100 %" in t or "is used up" in t]) == 1, channel
    assert len(channel) == 2
    assert len(_posts(fake_slack, ADMIN)) == 2


async def test_a_warn_limit_crossed_by_a_burst_alerts_once(replicas, fake_openai, fake_slack):
    a = replicas[0]
    await a.container.quota.set_limit(
        TEAM, Scope.DEFAULT_USER, "", parse_setting("4 requests/day warn alert 50"), set_by=ADMIN
    )

    texts = await _storm(replicas, fake_slack, 10, user_of=lambda i: "U0ANA1")

    assert not any(t.startswith(":no_entry:") for t in texts)  # warn: every request is answered
    [dm] = _posts(fake_slack, "U0ANA1")
    assert "Your personal quota of *4 requests per day* has reached 50 %" in dm
    assert len(_posts(fake_slack, ADMIN)) == 1
