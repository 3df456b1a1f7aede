"""A hand-made ledger for digest tests: one New York week across the end of DST, with rows just outside it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.infra.db.tables import LedgerRow

TZ = ZoneInfo("America/New_York")
TEAM, CHANNEL = "T1", "C1"
PRIMARY, FALLBACK, UNPRICED = "gpt-4.1-nano", "gpt-4o-mini", "house-model"
# The week Mon 26 Oct – Sun 1 Nov 2026 in New York: EDT (UTC-4) until 1 Nov 02:00, then EST (UTC-5).
WEEK_START = datetime(2026, 10, 26, 4, 0, tzinfo=timezone.utc)
WEEK_END = datetime(2026, 11, 2, 5, 0, tzinfo=timezone.utc)
SEND_DAY = WEEK_END.astimezone(TZ).date()

_keys = count(1)


def utc(*parts: int) -> datetime:
    """A UTC instant."""
    return datetime(*parts, tzinfo=timezone.utc)


def row(
    at: datetime,
    *,
    model: str = PRIMARY,
    user: str = "U1",
    ok: bool = True,
    error: str | None = None,
    tokens: tuple[int, int, int] = (0, 0, 0),
    cost: str | None = "0",
    baseline: str | None = "0",
    wh: float | None = None,
    team: str = TEAM,
    channel: str = CHANNEL,
) -> dict:
    """One ledger row as the router writes it (a failed attempt is not billed)."""
    prompt, cached, completion = tokens
    return {
        "created_at": at,
        "team_id": team,
        "channel_id": channel,
        "user_id": user,
        "request_key": f"k{next(_keys)}",
        "task": "rewrite",
        "requested_model": model,
        "served_model": model if ok else None,
        "attempt": 1,
        "outcome": "ok" if ok else "error",
        "error_code": error,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "completion_tokens": completion,
        "cost_usd": Decimal(cost) if cost is not None else None,
        "baseline_cost_usd": Decimal(baseline) if baseline is not None else None,
        "energy_wh": wh,
        "latency_ms": 120.0,
    }


def week_rows() -> list[dict]:
    """The seeded ledger; the expected figures in EXPECTED are worked out by hand from it."""
    return [
        # In the week.
        row(WEEK_START, user="U1", tokens=(1000, 200, 500), cost="0.100000001", baseline="1.000000001", wh=0.5),
        row(
            utc(2026, 10, 28, 12), user="U2", tokens=(2000, 0, 100), cost="0.200000002", baseline="2.000000002", wh=0.25
        ),
        row(utc(2026, 10, 30, 17, 59), user="U1", ok=False, error="rate_limit_exceeded"),
        row(
            utc(2026, 10, 30, 18),
            model=FALLBACK,
            user="U2",
            tokens=(300, 100, 50),
            cost="0.300000003",
            baseline="0.600000006",
        ),
        row(utc(2026, 10, 31, 9), user="U3", ok=False, error="model_not_found"),
        row(utc(2026, 11, 1, 10), model=UNPRICED, user="U3", tokens=(10, 0, 5), cost=None, baseline=None),
        # 23:30 and 23:59:59 on Sunday in New York (EST), after midnight UTC: still in the week.
        row(utc(2026, 11, 2, 4, 30), user="U3", ok=False, error="rate_limit_exceeded"),
        row(
            datetime(2026, 11, 2, 4, 59, 59, 999000, tzinfo=timezone.utc),
            user="U1",
            tokens=(100, 50, 10),
            cost="1.5",
            baseline="3",
            wh=1.0,
        ),
        # Just outside: the next week, the week before, another channel, another workspace.
        row(WEEK_END, user="U1", tokens=(1, 0, 1), cost="11", baseline="12", wh=1.0),
        row(
            datetime(2026, 10, 26, 3, 59, 59, tzinfo=timezone.utc), user="U9", tokens=(7, 0, 7), cost="7", baseline="8"
        ),
        row(WEEK_START, channel="C2", user="U1", tokens=(9, 0, 9), cost="13", baseline="14"),
        row(WEEK_START, team="T2", user="U1", tokens=(9, 0, 9), cost="17", baseline="18"),
        # The week before: its first instant is in, the one before it is not.
        row(utc(2026, 10, 19, 4), user="U9", tokens=(5, 0, 5), cost="2", baseline="3"),
        row(utc(2026, 10, 19, 3, 59), user="U9", tokens=(5, 0, 5), cost="100", baseline="100"),
    ]


EXPECTED = {
    "requests": 5,
    "prompt_tokens": 3410,
    "cached_tokens": 350,
    "completion_tokens": 665,
    "cost_usd": Decimal("2.100000006"),
    "unpriced": 1,
    "fallbacks": 2,
    "baseline_usd": Decimal("6.600000009"),
    "saved_usd": Decimal("4.500000003"),
    "previous_requests": 2,
    "previous_cost_usd": Decimal("9"),
}


async def seed(engine: AsyncEngine, rows: list[dict]) -> None:
    """Insert ledger rows with plain SQL INSERTs."""
    if not rows:
        return
    async with engine.begin() as conn:
        await conn.execute(insert(LedgerRow), rows)
