"""The digest service on a real database and the fake Slack: each digest posted exactly once, caught up after downtime."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.catalog import Catalog
from bot.infra.db.digest_queries import SqlDigestQueries
from bot.infra.db.digest_store import SqlDigestStore
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.ports.digest_store import Frequency
from bot.services.digest import DigestBuilder, DigestService
from bot.slack.digest_chart import daily_cost_chart
from bot.slack.digest_publisher import SlackDigestPublisher, static_token
from tests.conftest import BOT_TOKEN
from tests.infra.db.digest_seed import row, seed

PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc


class Clock:
    """A settable clock: time travel instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Replica:
    """One Frugal process's digest service, with its own engine (its own connection pool)."""

    def __init__(self, url: str, api_url: str, clock: Clock, name: str) -> None:
        self.engine = make_engine(url)
        sessions = make_sessionmaker(self.engine)
        builder = DigestBuilder(
            SqlDigestQueries(sessions),
            Catalog.load(None),
            primary_model="gpt-4.1-nano",
            baseline_model="gpt-4o",
            tz=PARIS,
        )
        self.service = DigestService(
            SqlDigestStore(sessions),
            builder,
            SlackDigestPublisher(api_url, static_token(BOT_TOKEN)),
            daily_cost_chart,
            tz=PARIS,
            clock=clock,
            owner=name,
        )

    async def close(self) -> None:
        await self.service.aclose()
        await self.engine.dispose()


@pytest.fixture
async def replicas(migrated_url, fake_slack):
    made: list[Replica] = []

    def make(clock: Clock, name: str = "r1") -> DigestService:
        replica = Replica(migrated_url, fake_slack.api_url, clock, name)
        made.append(replica)
        return replica.service

    yield make
    for replica in made:
        await replica.close()


async def _ledger(url: str, *instants: datetime) -> None:
    engine = make_engine(url)
    try:
        await seed(
            engine,
            [
                row(at, team="T1", channel="C1", tokens=(100, 0, 50), cost="0.25", baseline="1", wh=0.3)
                for at in instants
            ],
        )
    finally:
        await engine.dispose()


def _blocks(params: dict) -> list[dict]:
    blocks = params["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _posts(fake_slack) -> list[dict]:
    return [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "C1"]


async def test_two_replicas_ticking_together_post_each_digest_once(replicas, migrated_url, fake_slack):
    start = datetime(2026, 11, 1, 12, tzinfo=UTC)
    await _ledger(migrated_url, *(start + timedelta(days=i) for i in range(6)))
    clock = Clock(start)
    a, b = replicas(clock, "replica-a"), replicas(clock, "replica-b")
    await a.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))

    posted = 0
    for day in range(2, 7):
        clock.now = datetime(2026, 11, day, 8, 0, 5, tzinfo=UTC)  # 09:00:05 in Paris
        posted += sum(await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick()))

    assert posted == 5
    posts = _posts(fake_slack)
    assert len(posts) == 5
    # One digest per day, each about the day before.
    headers = [_blocks(p)[0]["text"]["text"] for p in posts]
    assert headers == [
        f"Daily cost digest · {day:%a} {day.day} Nov 2026" for day in (date(2026, 11, d) for d in range(1, 6))
    ]
    assert len(fake_slack.calls_to("files.completeUploadExternal")) == 5


async def test_a_digest_missed_during_downtime_is_posted_once_at_start(replicas, migrated_url, fake_slack):
    await _ledger(migrated_url, datetime(2026, 11, 2, 10, tzinfo=UTC))
    clock = Clock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    first = replicas(clock, "before-the-outage")
    await first.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))
    assert await first.tick() == 0

    # Down from Sunday noon until Tuesday 16:00 Paris time: Tuesday 09:00 was missed by seven hours,
    # Monday 09:00 by 31 hours; both are within the 36-hour grace.
    clock.now = datetime(2026, 11, 3, 15, tzinfo=UTC)
    restarted = replicas(clock, "after-the-outage")
    assert await restarted.tick() == 2
    clock.now += timedelta(minutes=1)
    assert await restarted.tick() == 0
    clock.now += timedelta(hours=3)
    assert await restarted.tick() == 0

    texts = [p["text"] for p in _posts(fake_slack)]
    assert len(texts) == 2
    assert "No Frugal usage" in texts[0] and "Sun 1 Nov 2026" in texts[0]  # a quiet day: one short line
    assert texts[1].startswith("Daily cost digest · Mon 2 Nov 2026: $0.25 over 1 request")


async def test_digests_older_than_the_grace_window_are_skipped(replicas, migrated_url, fake_slack):
    clock = Clock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    service = replicas(clock)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))

    # Back on Friday 11:00 after four days down: only Thursday's and Friday's 09:00 are within 36 hours.
    clock.now = datetime(2026, 11, 6, 10, tzinfo=UTC)
    assert await service.tick() == 2
    assert [p["text"].split("(")[-1] for p in _posts(fake_slack)] == ["Wed 4 Nov 2026).", "Thu 5 Nov 2026)."]


async def test_a_weekly_digest_catches_up_within_eight_days(replicas, fake_slack):
    clock = Clock(datetime(2026, 10, 30, 12, tzinfo=UTC))
    service = replicas(clock)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.WEEKLY, time(9))

    clock.now = datetime(2026, 11, 9, 10, tzinfo=UTC)  # Monday 9 Nov, 11:00: the 2 Nov digest is 7 days late
    assert await service.tick() == 2
    assert await service.tick() == 0
    assert len(_posts(fake_slack)) == 2


async def test_a_failed_post_is_retried_later_and_only_what_is_missing_is_sent(replicas, migrated_url, fake_slack):
    await _ledger(migrated_url, datetime(2026, 11, 2, 10, tzinfo=UTC))
    clock = Clock(datetime(2026, 11, 2, 8, 30, tzinfo=UTC))  # after Monday's 09:00
    a, b = replicas(clock, "a"), replicas(clock, "b")
    await a.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))
    fake_slack.fail(
        "files.completeUploadExternal", status=200, headers={}, body={"ok": False, "error": "internal_error"}
    )

    clock.now = datetime(2026, 11, 3, 8, 1, tzinfo=UTC)
    assert await a.tick() == 0  # the message went out, the chart did not
    assert len(_posts(fake_slack)) == 1
    assert await b.tick() == 0  # too early to retry

    clock.now += timedelta(minutes=6)
    assert sum(await asyncio.gather(a.tick(), b.tick())) == 1
    assert len(_posts(fake_slack)) == 1  # the message is not posted twice
    completes = fake_slack.calls_to("files.completeUploadExternal")
    assert len(completes) == 2
    # The retried chart goes under the message posted the first time.
    assert completes[0].params["thread_ts"] == completes[1].params["thread_ts"]


async def test_a_refused_post_is_given_up_not_retried(replicas, fake_slack):
    clock = Clock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    service = replicas(clock)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "not_in_channel"})

    clock.now = datetime(2026, 11, 2, 8, 1, tzinfo=UTC)
    assert await service.tick() == 0
    clock.now += timedelta(hours=1)
    assert await service.tick() == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_unsubscribing_stops_the_digests(replicas, fake_slack):
    clock = Clock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    service = replicas(clock)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))
    ended = await service.unsubscribe("T1", "C1")

    clock.now = datetime(2026, 11, 2, 8, 1, tzinfo=UTC)
    assert ended is not None and ended.frequency is Frequency.DAILY
    assert await service.tick() == 0
    assert await service.unsubscribe("T1", "C1") is None
    assert _posts(fake_slack) == []


async def test_a_new_schedule_does_not_repeat_a_period_already_posted(replicas, fake_slack):
    clock = Clock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    service = replicas(clock)
    await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(9))
    clock.now = datetime(2026, 11, 2, 8, 1, tzinfo=UTC)
    assert await service.tick() == 1

    # Moved to 10:00 after the 09:00 digest went out: Sunday is not posted again at 10:00.
    sub, before = await service.subscribe("T1", "C1", "UADMIN", Frequency.DAILY, time(10))
    assert before is not None and before.id != sub.id
    clock.now = datetime(2026, 11, 2, 9, 1, tzinfo=UTC)
    assert await service.tick() == 0
    clock.now = datetime(2026, 11, 3, 9, 1, tzinfo=UTC)
    assert await service.tick() == 1
    assert len(_posts(fake_slack)) == 2


async def test_post_now_posts_the_period_so_far_without_claiming(replicas, migrated_url, fake_slack):
    await _ledger(migrated_url, datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC))
    clock = Clock(datetime(2026, 11, 3, 12, tzinfo=UTC))  # Tuesday 13:00
    service = replicas(clock)

    digest = await service.post_now("T1", "C1", Frequency.WEEKLY)

    assert (digest.requests, str(digest.cost_usd)) == (2, "0.500000000")
    assert digest.period.first_day == date(2026, 11, 2) and not digest.period.complete
    [post] = _posts(fake_slack)
    assert post["text"].startswith("Cost so far this week · Mon 2 – Tue 3 Nov 2026, until 13:00")
    assert len(fake_slack.uploads) == 1
