"""The schedule inside `frugal run`: the digest tick runs at start (catching up), every interval, and stops cleanly."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.catalog import Catalog
from bot.infra.db.digest_queries import SqlDigestQueries
from bot.infra.db.digest_store import SqlDigestStore
from bot.infra.db.digest_tables import DigestSubscriptionRow
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.ports.digest_store import Frequency
from bot.scheduler import build_scheduler
from bot.services.digest import DigestBuilder, DigestService
from bot.slack.digest_chart import daily_cost_chart
from bot.slack.digest_publisher import SlackDigestPublisher, static_token
from tests.conftest import BOT_TOKEN

UTC = ZoneInfo("UTC")


def _service(url: str, api_url: str) -> tuple[DigestService, AsyncEngine]:
    """A digest service on the real clock, as `frugal run` builds it."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    builder = DigestBuilder(
        SqlDigestQueries(sessions), Catalog.load(None), primary_model="gpt-4.1-nano", baseline_model="gpt-4o", tz=UTC
    )
    publisher = SlackDigestPublisher(api_url, static_token(BOT_TOKEN))
    return DigestService(SqlDigestStore(sessions), builder, publisher, daily_cost_chart, tz=UTC), engine


async def test_the_tick_runs_at_start_and_catches_up_a_missed_digest(migrated_url, make_settings, fake_slack):
    now = datetime.now(timezone.utc)
    two_hours_ago = (now - timedelta(hours=2)).time().replace(second=0, microsecond=0)
    service, engine = _service(migrated_url, fake_slack.api_url)
    # Sends 2 h and 26 h ago were missed while the bot was down (both within the 36 h grace), the one 50 h ago is too old.
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, two_hours_ago)
    await _backdate_subscriptions(engine, now - timedelta(days=3))
    scheduler = build_scheduler(make_settings(migrated_url), service, tick_seconds=3600)
    try:
        scheduler.start()
        await fake_slack.await_calls("chat.postMessage", count=2, timeout=20)
        await asyncio.sleep(0.5)
        assert [p.params["channel"] for p in fake_slack.calls_to("chat.postMessage")] == ["C1", "C1"]
        assert scheduler.apscheduler.get_job("digests").next_run_time > datetime.now(timezone.utc) + timedelta(
            minutes=59
        )
    finally:
        await scheduler.stop()
        await engine.dispose()
    assert not scheduler.apscheduler.running
    assert await service.tick() == 0  # stopped: no new tick starts
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


async def test_stopping_waits_for_a_digest_being_posted(migrated_url, make_settings, fake_slack):
    now = datetime.now(timezone.utc)
    service, engine = _service(migrated_url, fake_slack.api_url)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(0))
    await _backdate_subscriptions(engine, now - timedelta(days=1, hours=1))
    fake_slack.method_latency["chat.postMessage"] = 0.5
    scheduler = build_scheduler(make_settings(migrated_url), service, tick_seconds=3600)
    try:
        scheduler.start()
        await fake_slack.await_calls("chat.postMessage", timeout=20)
        await scheduler.stop()  # called while Slack is still answering
        runs = await _statuses(engine)
    finally:
        await engine.dispose()
    assert runs and all(status == "posted" for status in runs)


async def _backdate_subscriptions(engine: AsyncEngine, since: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(DigestSubscriptionRow).values(created_at=since))


async def _statuses(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT status FROM digest_runs"))]


async def test_two_replicas_schedulers_post_each_digest_once(migrated_url, make_settings, fake_slack):
    now = datetime.now(timezone.utc)
    one, engine_one = _service(migrated_url, fake_slack.api_url)
    two, engine_two = _service(migrated_url, fake_slack.api_url)
    await one.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, (now - timedelta(hours=2)).time().replace(microsecond=0))
    await one.subscribe("T1", "C2", "UADMIN", Frequency.DAILY, (now - timedelta(hours=1)).time().replace(microsecond=0))
    await _backdate_subscriptions(engine_one, now - timedelta(days=3))
    # Each replica would post 2 digests per channel (2 h / 26 h and 1 h / 25 h late): 4 in all, each once.
    schedulers = [build_scheduler(make_settings(migrated_url), s, tick_seconds=0.2) for s in (one, two)]
    try:
        for scheduler in schedulers:
            scheduler.start()
        await fake_slack.await_calls("chat.postMessage", count=4, timeout=30)
        await asyncio.sleep(1.5)  # several more ticks of both
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
        runs = await _statuses(engine_one)
        await engine_one.dispose()
        await engine_two.dispose()
    assert sorted(c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")) == ["C1", "C1", "C2", "C2"]
    assert runs == ["posted"] * 4
