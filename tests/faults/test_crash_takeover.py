"""kill -9 with mentions in flight on a channel with a quota; after a restart, Slack's retries take the requests over."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from bot.infra.db.deliveries import DeliveryRow
from tests.fakes.slack_signing import app_mention_event, event_callback
from tests.faults.process import (
    books,
    chat_calls,
    set_channel_quota,
    until,
)

IN_FLIGHT = 12
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


async def _leases_run_out(database_url: str) -> list[DeliveryRow]:
    """What the clock does in the 3 minutes before Slack's retry: every lease of the dead process runs out."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = list((await conn.execute(select(DeliveryRow))).all())
            await conn.execute(update(DeliveryRow).values(lease_expires_at=DeliveryRow.claimed_at))
    finally:
        await engine.dispose()
    return rows


async def _deliveries(database_url: str) -> list[DeliveryRow]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(DeliveryRow).order_by(DeliveryRow.key))).all())
    finally:
        await engine.dispose()


async def test_slacks_retry_after_a_crash_takes_over_the_dead_hold_and_charges_once(
    run_frugal, migrated_url, make_settings, fake_openai, fake_slack
):
    await set_channel_quota(make_settings(migrated_url), "1000 requests/day")
    mentions = [
        event_callback(app_mention_event(f"<@UBOT> rewrite crash number {i}"), event_id=f"EvCRASH{i:02d}")
        for i in range(IN_FLIGHT)
    ]
    crashed = await run_frugal()
    fake_openai.latency = 60.0  # the first process never gets its answers
    assert await asyncio.gather(*(crashed.post(body, kind) for body, kind in mentions)) == [200] * IN_FLIGHT
    await until(lambda: chat_calls(fake_openai) == IN_FLIGHT, 10, "every model call started")

    crashed.signal(signal.SIGKILL)
    assert await crashed.exited(timeout=10) == -signal.SIGKILL
    dead = await books(migrated_url)
    assert (dead.rows, dead.holds, dead.reserved) == ([], IN_FLIGHT, IN_FLIGHT), "the dead process left its holds"
    assert [row.state for row in await _leases_run_out(migrated_url)] == ["claimed"] * IN_FLIGHT

    fake_openai.latency = 0.0
    restarted = await run_frugal()
    assert await asyncio.gather(*(restarted.post(body, kind, RETRY) for body, kind in mentions)) == [200] * IN_FLIGHT
    replies = await fake_slack.await_calls("chat.postMessage", IN_FLIGHT, timeout=20)

    assert sorted(call.params["text"] for call in replies) == sorted(
        f"[gpt-4.1-nano] crash number {i}" for i in range(IN_FLIGHT)
    )
    assert chat_calls(fake_openai) == 2 * IN_FLIGHT  # the dead process's calls, then the retries'
    for _ in range(100):
        deliveries = await _deliveries(migrated_url)
        if {row.state for row in deliveries} == {"done"}:
            break
        await asyncio.sleep(0.05)
    assert [(row.state, row.claims) for row in deliveries] == [("done", 2)] * IN_FLIGHT
    assert restarted.output().count("took over the quota hold") == IN_FLIGHT
    charged = await books(migrated_url)
    assert Counter((row.request_key, row.outcome) for row in charged.rows) == {
        (f"event:EvCRASH{i:02d}", "ok"): 1 for i in range(IN_FLIGHT)
    }
    # Charged once each: the dead hold was settled to nothing (no answer was recorded), the retry's counted.
    assert (charged.used, charged.reserved, charged.holds) == (Decimal(IN_FLIGHT), 0, 0)
    assert "already being answered" not in " ".join(call.params["text"] for call in replies)
    assert "Traceback" not in restarted.output()
