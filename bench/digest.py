"""Digest build time over a large ledger, on PostgreSQL and SQLite; prints a markdown table.

For each backend and ledger size it makes a throwaway database (PostgreSQL: a new database next to
TEST_DATABASE_URL, or postgresql://postgres@127.0.0.1:5432/postgres; SQLite: a temp file), applies the
real migrations, bulk-loads N ledger rows in SQL (generate_series / a recursive CTE) spread over 50
channels and the 30 days before the digest, vacuums and analyzes it, then times DigestBuilder.build — the digest the scheduler
posts, every SQL aggregation included — for one channel's week and one channel's 30 days. Each
figure is the median of --runs builds after one warm-up build. The databases are dropped afterwards.

    python bench/digest.py                      # 1M and 5M rows, both backends
    python bench/digest.py --rows 1000000 --backends sqlite --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench.databases import temp_sqlite, throwaway_postgres  # noqa: E402
from bot.catalog import Catalog  # noqa: E402
from bot.infra.db.digest_queries import SqlDigestQueries  # noqa: E402
from bot.infra.db.engine import make_engine, make_sessionmaker  # noqa: E402
from bot.infra.db.migrate import upgrade  # noqa: E402
from bot.ports.digest_store import Frequency  # noqa: E402
from bot.services.digest import DigestBuilder, DigestPeriod  # noqa: E402

TARGET_S = 1.0  # at 5M rows on PostgreSQL
CHANNELS = 50
USERS = 200
DAYS = 30
TZ = ZoneInfo("UTC")
# The digest is sent on SEND_DAY; the ledger covers the DAYS days before it.
SEND_DAY = date(2026, 11, 2)
LEDGER_END = datetime(2026, 11, 2, tzinfo=timezone.utc)
LEDGER_START = LEDGER_END - timedelta(days=DAYS)
CHANNEL = "C00007"
TEAM = "T0001"

# Columns filled for row i (0 ≤ i < N): rows in time order, as the router appends them; channel i % 50;
# within a channel, 1 in 20 a failed attempt and 1 in 10 answered by the fallback model; 200 users.
_COLUMNS = (
    "created_at, team_id, channel_id, user_id, request_key, task, requested_model, served_model, attempt, outcome, "
    "error_code, prompt_tokens, cached_tokens, completion_tokens, cost_usd, baseline_cost_usd, energy_wh, latency_ms"
)
_ROW = """
    {created_at},
    'T0001',
    'C' || lpad(CAST(i % 50 AS TEXT), 5, '0'),
    'U' || CAST((i / 50) % 200 AS TEXT),
    'k' || CAST(i AS TEXT),
    'rewrite',
    CASE WHEN (i / 50) % 10 = 3 THEN 'gpt-4o-mini' ELSE 'gpt-4.1-nano' END,
    CASE WHEN (i / 50) % 20 = 7 THEN NULL ELSE 'gpt-4.1-nano' END,
    1,
    CASE WHEN (i / 50) % 20 = 7 THEN 'error' ELSE 'ok' END,
    CASE WHEN (i / 50) % 20 = 7 THEN 'rate_limit_exceeded' ELSE NULL END,
    200 + i % 800, (i % 4) * 50, 100 + i % 300,
    {cost}, {baseline}, 0.2 + (i % 7) * 0.01, 300.0
"""


def _pg_insert(n: int) -> str:
    step_us = DAYS * 86_400_000_000 // n
    row = _ROW.format(
        created_at=f"TIMESTAMPTZ '{LEDGER_START.isoformat()}' + (i * {step_us}) * INTERVAL '1 microsecond'",
        cost="CAST((200 + i % 800) * 0.0000001 + (100 + i % 300) * 0.0000004 AS NUMERIC(18, 9))",
        baseline="CAST((200 + i % 800) * 0.0000025 + (100 + i % 300) * 0.00001 AS NUMERIC(18, 9))",
    )
    return f"INSERT INTO usage_ledger ({_COLUMNS}) SELECT {row} FROM generate_series(CAST(0 AS BIGINT), {n - 1}) AS i"


def _sqlite_insert(n: int) -> str:
    # Stored as SQLAlchemy stores UTC timestamps on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'.
    start = int(LEDGER_START.timestamp())
    seconds = f"({start} + CAST(i * {DAYS * 86_400} / {n} AS INTEGER))"
    row = _ROW.format(
        created_at=f"strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000'",
        cost="(200 + i % 800) * 0.0000001 + (100 + i % 300) * 0.0000004",
        baseline="(200 + i % 800) * 0.0000025 + (100 + i % 300) * 0.00001",
    ).replace("lpad(CAST(i % 50 AS TEXT), 5, '0')", "printf('%05d', i % 50)")
    return (
        f"INSERT INTO usage_ledger ({_COLUMNS}) "
        f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1}) SELECT {row} FROM s"
    )


@dataclass
class Result:
    """One measured line of the table."""

    backend: str
    rows: int
    period: str
    window_rows: int
    p50_ms: float
    max_ms: float
    load_s: float


async def _measure(backend: str, n: int, runs: int) -> list[Result]:
    database = throwaway_postgres if backend == "postgresql" else temp_sqlite
    async with database() as url:
        await upgrade(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            async with engine.begin() as conn:
                await conn.execute(text(_pg_insert(n) if backend == "postgresql" else _sqlite_insert(n)))
            # What autovacuum does to an append-only ledger soon after the rows are written: statistics, and
            # the visibility map that lets PostgreSQL answer from the index alone.
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE usage_ledger" if backend == "postgresql" else "ANALYZE"))
            load_s = time.perf_counter() - started
            builder = DigestBuilder(
                SqlDigestQueries(make_sessionmaker(engine)),
                Catalog.load(None),
                primary_model="gpt-4.1-nano",
                baseline_model="gpt-4o",
                tz=TZ,
            )
            week = DigestPeriod.ending_before(Frequency.WEEKLY, SEND_DAY, TZ)
            month_first = SEND_DAY - timedelta(days=DAYS)
            month = DigestPeriod(
                Frequency.WEEKLY, LEDGER_START, LEDGER_END, month_first, SEND_DAY - timedelta(days=1), True
            )
            results = []
            for label, period in (("week", week), ("30 days", month)):
                timings, digest = [], None
                for _ in range(runs + 1):
                    t0 = time.perf_counter()
                    digest = await builder.build(TEAM, CHANNEL, period, LEDGER_END)
                    timings.append(time.perf_counter() - t0)
                assert digest is not None and digest.requests > 0
                window = digest.requests + sum(n for _, n in digest.failures)
                timings = timings[1:]  # the first build warms the pool and the caches
                results.append(
                    Result(backend, n, label, window, statistics.median(timings) * 1000, max(timings) * 1000, load_s)
                )
            return results
        finally:
            await engine.dispose()


def _table(results: list[Result]) -> str:
    lines = [
        "| backend | ledger rows | digest period | rows in the period | build p50 | build max | load time |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.rows:,} | {r.period} | {r.window_rows:,} | {r.p50_ms:,.0f} ms | {r.max_ms:,.0f} ms "
            f"| {r.load_s:,.0f} s |"
        )
    pg = [r for r in results if r.backend == "postgresql" and r.rows >= 5_000_000]
    if pg:
        worst = max(r.p50_ms for r in pg) / 1000
        verdict = "met" if worst <= TARGET_S else "MISSED"
        lines.append("")
        lines.append(f"Target: ≤ {TARGET_S:g} s at 5M rows on PostgreSQL — {verdict} (slowest p50 {worst:.2f} s).")
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> None:
    results: list[Result] = []
    for backend in args.backends:
        for n in args.rows:
            print(f"… {backend}, {n:,} rows", file=sys.stderr, flush=True)
            results += await _measure(backend, n, args.runs)
    print(_table(results))


def main() -> None:
    """Parse the options, run the measurements, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda v: [int(x) for x in v.split(",")], default=[1_000_000, 5_000_000])
    parser.add_argument("--backends", type=lambda v: v.split(","), default=["postgresql", "sqlite"])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
