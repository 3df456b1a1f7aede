"""The App Home's ledger reads on SQLite and PostgreSQL: one workspace, one window, answered requests only."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.home_queries import SqlHomeQueries
from bot.infra.db.ledger import SqlLedger
from bot.ports.home_queries import ChannelUsage
from bot.ports.ledger import LedgerEntry

NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _entry(
    team: str,
    channel: str,
    user: str,
    *,
    at: datetime,
    cost: str | None = "0.000100000",
    outcome: str = "ok",
    tokens: tuple[int, int] = (100, 20),
) -> LedgerEntry:
    return LedgerEntry(
        team_id=team,
        channel_id=channel,
        user_id=user,
        request_key=f"k-{team}-{channel}-{at.isoformat()}",
        task="rewrite",
        requested_model="gpt-4.1-nano",
        served_model="gpt-4.1-nano" if outcome == "ok" else None,
        prompt_tokens=tokens[0],
        cached_tokens=0,
        completion_tokens=tokens[1],
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=None,
        energy_wh=None,
        latency_ms=10.0,
        outcome=outcome,
        error_code=None if outcome == "ok" else "server_error",
        attempt=1,
        created_at=at,
    )


async def _queries(url: str, entries: list[LedgerEntry]):
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    ledger = SqlLedger(sessions)
    for entry in entries:
        await ledger.record(entry)
    return engine, SqlHomeQueries(sessions)


async def test_usage_is_summed_per_channel_within_one_workspace_and_window(migrated_url):
    mid = datetime(2026, 11, 15, tzinfo=timezone.utc)
    engine, queries = await _queries(
        migrated_url,
        [
            _entry("T1", "C1", "U1", at=mid),
            _entry("T1", "C1", "U2", at=mid.replace(day=16), cost="0.000000001"),
            _entry("T1", "C1", "U2", at=mid, outcome="error", cost="0", tokens=(0, 0)),
            _entry("T1", "C2", "U1", at=mid, cost=None),
            _entry("T1", "C1", "U1", at=datetime(2026, 10, 31, 23, 59, tzinfo=timezone.utc)),
            _entry("T1", "C1", "U1", at=DEC),
            _entry("T2", "C1", "U1", at=mid, cost="9"),
        ],
    )
    try:
        usage = sorted(await queries.usage_by_channel("T1", NOV, DEC), key=lambda u: u.channel_id)
    finally:
        await engine.dispose()

    assert usage == [
        ChannelUsage("C1", requests=2, tokens=240, cost_usd=Decimal("0.000100001"), unpriced=0),
        ChannelUsage("C2", requests=1, tokens=120, cost_usd=Decimal(0), unpriced=1),
    ]


async def test_channels_used_by_a_user_stay_in_their_workspace(migrated_url):
    mid = datetime(2026, 11, 15, tzinfo=timezone.utc)
    engine, queries = await _queries(
        migrated_url,
        [
            _entry("T1", "C1", "U1", at=mid),
            _entry("T1", "C2", "U1", at=mid, outcome="error", cost="0"),
            _entry("T1", "C3", "U2", at=mid),
            _entry("T2", "C4", "U1", at=mid),
            _entry("T1", "C5", "U1", at=DEC),
        ],
    )
    try:
        assert await queries.channels_used_by("T1", "U1", NOV, DEC) == {"C1"}
        assert await queries.channels_used_by("T2", "U1", NOV, DEC) == {"C4"}
        assert await queries.usage_by_channel("T3", NOV, DEC) == []
    finally:
        await engine.dispose()
