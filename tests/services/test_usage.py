"""UsageService on the real ledger queries: periods counted in FRUGAL_TIMEZONE (time travel, no sleeping), ordering, totals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.usage_queries import SqlUsageQueries
from bot.ports.quota import Metric, Period, QuotaUse
from bot.services.usage import UsageService
from tests.infra.db.test_usage_queries import entry

PARIS = ZoneInfo("Europe/Paris")
# 1 Dec 2026, 00:30 in Paris is still 30 Nov in UTC.
NOW = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)


class FixedQuotas:
    """A QuotaReader that answers one list and records what it was asked."""

    def __init__(self, uses: list[QuotaUse], personal: list[QuotaUse] | None = None) -> None:
        self.uses = uses
        self.personal = personal or []
        self.asked: list[tuple[str, str, datetime]] = []
        self.asked_for_people: list[tuple[str, str, datetime]] = []

    async def channel_quotas(self, team_id: str, channel_id: str, at: datetime) -> list[QuotaUse]:
        """The fixed list."""
        self.asked.append((team_id, channel_id, at))
        return self.uses

    async def user_quotas(self, team_id: str, user_id: str, at: datetime) -> list[QuotaUse]:
        """The fixed per-person list."""
        self.asked_for_people.append((team_id, user_id, at))
        return self.personal


@pytest.fixture
async def ledger(migrated_url):
    """(record, queries) on a migrated database."""
    engine = make_engine(migrated_url)
    sessions = make_sessionmaker(engine)
    yield SqlLedger(sessions), SqlUsageQueries(sessions)
    await engine.dispose()


async def test_month_and_day_are_counted_in_the_configured_zone(ledger):
    record, queries = ledger
    for e in [
        entry(at=NOW - timedelta(minutes=10), cost="0.01"),  # 00:20 on 1 Dec in Paris: today, this month
        entry(at=NOW - timedelta(minutes=40), cost="0.02"),  # 23:50 on 30 Nov in Paris: last month
        entry(at=NOW - timedelta(days=3), cost="0.04"),
    ]:
        await record.record(e)
    quotas = FixedQuotas([])
    service = UsageService(queries, quotas, PARIS, clock=lambda: NOW)

    report = await service.channel_report("T1", "C1")

    assert report.month.start == datetime(2026, 11, 30, 23, tzinfo=timezone.utc)
    assert report.today.start == report.month.start
    assert (report.month.total.requests, report.month.total.cost_usd) == (1, Decimal("0.01"))
    assert report.today.total.cost_usd == Decimal("0.01")
    assert quotas.asked == [("T1", "C1", NOW)]


async def test_models_are_listed_costliest_first_and_summed(ledger):
    record, queries = ledger
    for e in [
        entry(model="gpt-4.1-nano", cost="0.001"),
        entry(model="gpt-4.1-nano", cost="0.002"),
        entry(model="gpt-4o", cost="0.5"),
        entry(model="mystery", cost=None),
    ]:
        await record.record(e)
    service = UsageService(
        queries, FixedQuotas([]), ZoneInfo("UTC"), clock=lambda: datetime(2026, 11, 20, tzinfo=timezone.utc)
    )

    report = await service.channel_report("T1", "C1")

    assert [(m.model, m.requests, m.cost_usd) for m in report.month.models] == [
        ("gpt-4o", 1, Decimal("0.5")),
        ("gpt-4.1-nano", 2, Decimal("0.003")),
        ("mystery", 1, Decimal(0)),
    ]
    assert report.month.total.requests == 4
    assert report.month.total.cost_usd == Decimal("0.503")
    assert not report.month.total.cost_known
    assert report.today.models == ()


async def test_quotas_are_passed_through(ledger):
    _, queries = ledger
    use = QuotaUse("channel", "C1", Metric.USD, Period.MONTH, Decimal(5), Decimal(1), NOW, NOW + timedelta(days=1))
    service = UsageService(queries, FixedQuotas([use]), PARIS, clock=lambda: NOW)

    assert (await service.channel_report("T1", "C1")).quotas == (use,)


async def test_the_askers_limits_are_read_only_when_someone_asks(ledger):
    _, queries = ledger
    channel = QuotaUse("channel", "C1", Metric.USD, Period.MONTH, Decimal(5), Decimal(1), NOW, NOW + timedelta(days=1))
    own = QuotaUse("user", "U7", Metric.USD, Period.MONTH, Decimal(2), Decimal(1), NOW, NOW + timedelta(days=1))
    quotas = FixedQuotas([channel], [own])
    service = UsageService(queries, quotas, PARIS, clock=lambda: NOW)

    anonymous = await service.channel_report("T1", "C1")
    asked = await service.channel_report("T1", "C1", "U7")

    assert (anonymous.quotas, anonymous.mine) == ((channel,), ())
    assert (asked.quotas, asked.mine) == ((channel,), (own,))
    assert [f.use for f in asked.forecasts] == [channel, own]
    assert quotas.asked_for_people == [("T1", "U7", NOW)]


async def test_table_defaults_to_this_month_and_orders_channels_by_cost(ledger):
    record, queries = ledger
    for e in [
        entry(channel="C1", cost="0.01"),
        entry(channel="C2", model="gpt-4o", cost="0.30"),
        entry(channel="C2", model="gpt-4.1-nano", cost="0.05"),
        entry(channel="C3", cost="1", at=datetime(2026, 10, 31, 22, 59, tzinfo=timezone.utc)),  # October in Paris
    ]:
        await record.record(e)
    service = UsageService(queries, FixedQuotas([]), PARIS, clock=lambda: datetime(2026, 11, 20, tzinfo=timezone.utc))

    table = await service.table()
    recent = await service.table(timedelta(days=3))
    one = await service.table(None, "C1")

    assert table.start == datetime(2026, 10, 31, 23, tzinfo=timezone.utc)
    assert [(t, c, line.model) for t, c, line in table.lines] == [
        ("T1", "C2", "gpt-4o"),
        ("T1", "C2", "gpt-4.1-nano"),
        ("T1", "C1", "gpt-4.1-nano"),
    ]
    assert table.total.cost_usd == Decimal("0.36")
    assert (
        recent.start == datetime(2026, 11, 17, tzinfo=timezone.utc) and recent.lines == ()
    )  # the rows are on the 15th
    assert [c for _, c, _ in one.lines] == ["C1"]
