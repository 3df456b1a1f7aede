"""Usage aggregation on SQLite and PostgreSQL: grouped by workspace, channel and model, exact to the nano-dollar."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.usage_queries import SqlUsageQueries
from bot.ports.ledger import LedgerEntry

NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC = datetime(2026, 12, 1, tzinfo=timezone.utc)
MID = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)


def entry(
    team: str = "T1",
    channel: str = "C1",
    *,
    at: datetime = MID,
    model: str = "gpt-4.1-nano",
    cost: str | None = "0.000100001",
    baseline: str | None = None,
    outcome: str = "ok",
    tokens: tuple[int, int, int] = (100, 10, 20),
    user: str = "U1",
) -> LedgerEntry:
    """A ledger row as the router writes it."""
    return LedgerEntry(
        team_id=team,
        channel_id=channel,
        user_id=user,
        request_key=f"k-{at.isoformat()}",
        task="rewrite",
        requested_model=model,
        served_model=model if outcome == "ok" else None,
        prompt_tokens=tokens[0],
        cached_tokens=tokens[1],
        completion_tokens=tokens[2],
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=Decimal(baseline) if baseline is not None else None,
        energy_wh=None,
        latency_ms=5.0,
        outcome=outcome,
        error_code=None if outcome == "ok" else "server_error",
        attempt=1,
        created_at=at,
    )


@pytest.fixture
async def seeded(migrated_url):
    """Returns a function that writes ledger entries and gives back the queries."""
    engine = make_engine(migrated_url)
    sessions = make_sessionmaker(engine)

    async def seed(*entries: LedgerEntry) -> SqlUsageQueries:
        ledger = SqlLedger(sessions)
        for e in entries:
            await ledger.record(e)
        return SqlUsageQueries(sessions)

    yield seed
    await engine.dispose()


async def test_rows_are_grouped_by_team_channel_and_model_within_the_window(seeded):
    queries = await seeded(
        entry(),
        entry(cost="0.000000003", tokens=(7, 0, 3)),
        entry(model="gpt-4o-mini", cost="0.25"),
        entry(channel="C2"),
        entry(team="T2"),
        entry(at=NOV - timedelta(seconds=1)),  # before the window
        entry(at=DEC),  # the end is exclusive
    )

    rows = await queries.totals(NOV, DEC, team_id="T1", channel_id="C1")

    by_model = {r.model: r for r in rows}
    assert set(by_model) == {"gpt-4.1-nano", "gpt-4o-mini"}
    nano = by_model["gpt-4.1-nano"]
    assert (nano.team_id, nano.channel_id, nano.requests) == ("T1", "C1", 2)
    assert (nano.prompt_tokens, nano.cached_tokens, nano.completion_tokens) == (107, 10, 23)
    assert nano.cost_usd == Decimal("0.000100004")
    assert by_model["gpt-4o-mini"].cost_usd == Decimal("0.25")


async def test_failed_attempts_are_counted_but_never_cost_anything(seeded):
    queries = await seeded(
        entry(), entry(outcome="error", cost="0.5", tokens=(0, 0, 0)), entry(outcome="timeout", cost=None)
    )

    [row] = await queries.totals(NOV, DEC, team_id="T1", channel_id="C1")

    assert (row.requests, row.failed, row.cost_usd, row.unpriced) == (1, 2, Decimal("0.000100001"), 0)


async def test_unknown_prices_are_counted_apart_and_savings_only_where_both_prices_are_known(seeded):
    queries = await seeded(
        entry(cost=None),
        entry(cost="0.001", baseline="0.025"),
        entry(cost="0.002"),
    )

    [row] = await queries.totals(NOV, DEC, team_id="T1", channel_id="C1")

    assert (row.requests, row.unpriced) == (3, 1)
    assert row.cost_usd == Decimal("0.003")
    assert (row.compared_cost_usd, row.compared_baseline_usd) == (Decimal("0.001"), Decimal("0.025"))


async def test_split_separates_the_rows_at_or_after_it(seeded):
    day = datetime(2026, 11, 15, tzinfo=timezone.utc)
    queries = await seeded(entry(at=day - timedelta(seconds=1)), entry(at=day), entry(at=day.replace(hour=9)))

    rows = await queries.totals(NOV, DEC, team_id="T1", channel_id="C1", split=day)

    assert sorted((r.recent, r.requests) for r in rows) == [(False, 1), (True, 2)]


async def test_without_filters_every_workspace_and_channel_is_read(seeded):
    queries = await seeded(entry(), entry(channel="C2"), entry(team="T2", channel="C1"))

    rows = await queries.totals(NOV, DEC)
    one_channel = await queries.totals(NOV, DEC, channel_id="C2")

    assert sorted((r.team_id, r.channel_id) for r in rows) == [("T1", "C1"), ("T1", "C2"), ("T2", "C1")]
    assert [(r.team_id, r.channel_id, r.recent) for r in one_channel] == [("T1", "C2", False)]


async def test_an_empty_window_gives_no_rows(seeded):
    queries = await seeded(entry())

    assert await queries.totals(DEC, DEC.replace(month=12, day=2), team_id="T1") == []
