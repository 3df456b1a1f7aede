"""The digest's SQL aggregations over a seeded ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import text

from bot.catalog import Catalog
from bot.infra.db.digest_queries import SqlDigestQueries, top_users_statement, usage_groups_statement
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.ports.digest_store import Frequency
from bot.services.digest import DigestBuilder, DigestPeriod, ModelUsage, UserCost
from tests.infra.db.digest_seed import (
    CHANNEL,
    EXPECTED,
    FALLBACK,
    PRIMARY,
    SEND_DAY,
    TEAM,
    TZ,
    UNPRICED,
    WEEK_END,
    WEEK_START,
    seed,
    utc,
    week_rows,
)


async def _build(url: str, rows: list[dict], period: DigestPeriod):
    engine = make_engine(url)
    try:
        await seed(engine, rows)
        builder = DigestBuilder(
            SqlDigestQueries(make_sessionmaker(engine)),
            Catalog.load(None),
            primary_model=PRIMARY,
            baseline_model="gpt-4o",
            tz=TZ,
        )
        return await builder.build(TEAM, CHANNEL, period, WEEK_END)
    finally:
        await engine.dispose()


async def test_weekly_totals_are_exact_and_bounded_by_local_midnights(migrated_url):
    period = DigestPeriod.ending_before(Frequency.WEEKLY, SEND_DAY, TZ)
    assert (period.start, period.end) == (WEEK_START, WEEK_END)

    digest = await _build(migrated_url, week_rows(), period)

    for name, value in EXPECTED.items():
        if name in ("baseline_usd", "saved_usd"):
            continue
        assert getattr(digest, name) == value, name
    assert digest.savings is not None
    assert (digest.savings.baseline_model, digest.savings.baseline_usd, digest.savings.saved_usd) == (
        "gpt-4o",
        EXPECTED["baseline_usd"],
        EXPECTED["saved_usd"],
    )
    assert digest.savings.compared == 4
    assert digest.models == (
        ModelUsage(PRIMARY, 3, Decimal("1.800000003"), 0),
        ModelUsage(FALLBACK, 1, Decimal("0.300000003"), 0),
        ModelUsage(UNPRICED, 1, Decimal(0), 1),
    )
    assert digest.failures == (("rate_limit_exceeded", 2), ("model_not_found", 1))
    assert digest.top_users == (
        UserCost("U1", 2, Decimal("1.600000001")),
        UserCost("U2", 2, Decimal("0.500000005")),
        UserCost("U3", 1, Decimal(0)),
    )
    assert digest.energy is not None
    assert abs(digest.energy.wh - 1.75) < 1e-9
    assert digest.energy.missing == 2
    assert len(digest.energy.sources) == 1 and "arXiv 2505.09598" in digest.energy.sources[0]
    days = {d.day: d.by_model for d in digest.days}
    assert list(days) == [date(2026, 10, 26) + timedelta(days=i) for i in range(7)]
    assert days[date(2026, 10, 26)] == {PRIMARY: Decimal("0.100000001")}
    assert days[date(2026, 10, 30)] == {FALLBACK: Decimal("0.300000003")}
    # Sunday 1 Nov: the unpriced request costs nothing known, the 23:59 EST one is Sunday's.
    assert days[date(2026, 11, 1)] == {UNPRICED: Decimal(0), PRIMARY: Decimal("1.5")}
    assert days[date(2026, 10, 27)] == {}


async def test_many_small_amounts_add_up_exactly(migrated_url):
    from tests.infra.db.digest_seed import row

    rows = [row(WEEK_START + timedelta(minutes=i), cost="0.1", baseline="0.3") for i in range(1000)]
    rows += [
        row(WEEK_START + timedelta(hours=30, seconds=i), cost="0.000000001", baseline="0.000000003") for i in range(999)
    ]

    digest = await _build(migrated_url, rows, DigestPeriod.ending_before(Frequency.WEEKLY, SEND_DAY, TZ))

    assert digest.cost_usd == Decimal("100.000000999")
    assert digest.savings.saved_usd == Decimal("200.000001998")
    assert digest.requests == 1999


async def test_a_quiet_period_is_empty_not_an_error(migrated_url):
    digest = await _build(migrated_url, [], DigestPeriod.ending_before(Frequency.DAILY, SEND_DAY, TZ))

    assert digest.empty
    assert (digest.requests, digest.cost_usd, digest.models, digest.savings, digest.energy) == (0, 0, (), None, None)
    assert len(digest.days) == 7


async def test_daily_period_to_date_compares_with_the_same_time_yesterday(migrated_url):
    from tests.infra.db.digest_seed import row

    now = utc(2026, 10, 28, 16)  # 12:00 in New York
    rows = [
        row(utc(2026, 10, 28, 4), cost="1", baseline="2"),  # today 00:00
        row(utc(2026, 10, 28, 15, 59), cost="2", baseline="2"),
        row(utc(2026, 10, 28, 16), cost="50", baseline="50"),  # now: not yet in
        row(utc(2026, 10, 27, 15), cost="4", baseline="4"),  # yesterday 11:00: in the comparison
        row(utc(2026, 10, 27, 17), cost="8", baseline="8"),  # yesterday 13:00: after the same time
    ]
    period = DigestPeriod.to_date(Frequency.DAILY, now, TZ)

    digest = await _build(migrated_url, rows, period)

    assert (digest.requests, digest.cost_usd) == (2, Decimal(3))
    assert (digest.previous_requests, digest.previous_cost_usd) == (1, Decimal(4))


async def test_the_aggregations_read_the_covering_index_only(migrated_url):
    from tests.infra.db.digest_seed import row

    engine = make_engine(migrated_url)
    try:
        # A month of 50 channels: one channel's rows lie scattered among the others'.
        await seed(engine, [row(WEEK_START + timedelta(minutes=2 * i), channel=f"C{i % 50}") for i in range(20000)])
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE usage_ledger" if conn.dialect.name == "postgresql" else "ANALYZE"))
            dialect = conn.dialect.name
            statements = [
                usage_groups_statement(dialect, TEAM, CHANNEL, [WEEK_START, WEEK_START + timedelta(days=3), WEEK_END]),
                top_users_statement(dialect, TEAM, CHANNEL, WEEK_START, WEEK_END, 5),
            ]
            explain = "EXPLAIN" if dialect == "postgresql" else "EXPLAIN QUERY PLAN"
            plans = []
            for statement in statements:
                compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                plans.append("\n".join(str(r[-1]) for r in await conn.execute(text(f"{explain} {compiled}"))))
    finally:
        await engine.dispose()
    for plan in plans:
        if dialect == "postgresql":
            assert "Index Only Scan using ix_usage_ledger_digest" in plan, plan
        else:
            assert "USING COVERING INDEX ix_usage_ledger_digest" in plan, plan
