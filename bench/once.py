"""What once-only delivery costs: claim and finish latency, and claims under contention; prints markdown.

Measures the real `SqlDeliveries` (bot/infra/db/deliveries.py) on a migrated temp-file SQLite
database and, with --postgres or TEST_DATABASE_URL, on a throwaway PostgreSQL database:

- claim, new key: the one statement every Slack delivery runs before its listener's work (before an
  event's ack; beside a command's or an interaction's, which is sent while the claim runs);
- claim, duplicate: what a retried delivery costs before it is dropped;
- finish: marking the delivery done, after the listener (off the ack path); under load the done
  marks of many deliveries share one UPDATE (group commit), here each call is alone;
- raw asyncpg (PostgreSQL only): the same INSERT … ON CONFLICT … RETURNING sent by asyncpg on one
  open connection, i.e. exactly one round trip — the floor the store is compared with;
- contention: two engines (two replicas) with `--concurrency` tasks each, every key claimed four
  times at once (twice per replica); reports claims per second and checks one winner per key.

Statements per call are counted with SQLAlchemy's before_cursor_execute; claims run in
autocommit, so there is no BEGIN/COMMIT around the statement (nor around a finish on PostgreSQL;
on SQLite a finish batch is one transaction). Figures are milliseconds.

    python bench/once.py                       # 2,000 claims per row
    python bench/once.py --claims 5000 --concurrency 32
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/once.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from bench.databases import throwaway_postgres  # noqa: E402
from bot.config import normalize_database_url  # noqa: E402
from bot.infra.db.deliveries import SqlDeliveries  # noqa: E402
from bot.infra.db.engine import make_engine  # noqa: E402
from bot.infra.db.migrate import upgrade  # noqa: E402

TARGET_P50_MS = 2.0
RAW_CLAIM = """
INSERT INTO slack_deliveries (key, team_id, kind, state, claims, first_seen_at, claimed_at, lease_expires_at)
VALUES ($1, 'T1', 'event', 'claimed', 1, now(), now(), now() + interval '3 minutes')
ON CONFLICT (key) DO UPDATE SET claims = slack_deliveries.claims + 1
WHERE slack_deliveries.state = 'claimed' AND slack_deliveries.lease_expires_at < excluded.claimed_at
RETURNING claims
"""


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def latencies(url: str, claims: int) -> tuple[dict[str, list[float]], float]:
    """Per-call milliseconds of claim (new, duplicate) and finish, and statements per claim."""
    engine = make_engine(url)
    statements: list[str] = []
    # On every Engine, not just this one: SQLite's writes run on the file writer's own connection
    # (bot/infra/db/sqlite_writers.py), which a listener on the async engine never sees.
    count = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(Engine, "before_cursor_execute", count)
    store = SqlDeliveries(engine)
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(100):  # warm-up: connections, prepared statements, database file
            await store.claim(f"warm:{run}:{i}", team_id="T1", kind="event")
        statements.clear()
        samples: dict[str, list[float]] = {"claim, new key": [], "claim, duplicate": [], "finish": []}
        for i in range(claims):
            key = f"event:{run}:{i}"
            samples["claim, new key"].append(await _timed(lambda key=key: store.claim(key, team_id="T1", kind="event")))
            samples["claim, duplicate"].append(
                await _timed(lambda key=key: store.claim(key, team_id="T1", kind="event"))
            )
            samples["finish"].append(await _timed(lambda key=key: store.finish(key)))
        per_claim = len(statements) / (3 * claims)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
        await engine.dispose()
    return samples, per_claim


async def raw_asyncpg(url: str, claims: int) -> list[float]:
    """The same claim statement over one asyncpg connection: one round trip each."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(100):
            await conn.fetchval(RAW_CLAIM, f"rawwarm:{run}:{i}")
        return [await _timed(lambda i=i: conn.fetchval(RAW_CLAIM, f"raw:{run}:{i}")) for i in range(claims)]
    finally:
        await conn.close()


async def contention(url: str, keys: int, concurrency: int) -> tuple[float, bool]:
    """Claims per second with two replicas racing on every key, and whether each key had exactly one winner."""
    engines = [make_engine(url), make_engine(url)]
    stores = [SqlDeliveries(engine) for engine in engines]
    run = uuid.uuid4().hex[:8]
    attempts = [(store, f"race:{run}:{k}") for k in range(keys) for store in stores for _ in range(2)]
    winners: dict[str, int] = {}
    gate = asyncio.Semaphore(2 * concurrency)

    async def attempt(store: SqlDeliveries, key: str) -> None:
        async with gate:
            if await store.claim(key, team_id="T1", kind="event") is not None:
                winners[key] = winners.get(key, 0) + 1

    try:
        started = time.perf_counter()
        await asyncio.gather(*(attempt(store, key) for store, key in attempts))
        elapsed = time.perf_counter() - started
    finally:
        for engine in engines:
            await engine.dispose()
    exact = len(winners) == keys and set(winners.values()) == {1}
    return len(attempts) / elapsed, exact


def render(results: dict[str, dict], concurrency: int) -> str:
    """The markdown section: latency table, contention table, verdict."""
    lines = [
        "| database | operation | calls | p50 ms | p99 ms | statements |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for database, result in results.items():
        for name, values in result["samples"].items():
            statements = f"{result['per_claim']:.0f}" if name != "raw asyncpg, one round trip" else "1"
            lines.append(
                f"| {database} | {name} | {len(values):,} | {statistics.median(values):.2f} | "
                f"{_percentile(values, 0.99):.2f} | {statements} |"
            )
        p50 = statistics.median(result["samples"]["claim, new key"])
        verdicts.append(f"{database}: {'met' if p50 <= TARGET_P50_MS else 'NOT met'} ({p50:.2f} ms)")
    lines += [
        "",
        "| database | contention | claim attempts/s | exactly one winner per key |",
        "|---|---|---|---|",
    ]
    for database, result in results.items():
        lines.append(
            f"| {database} | 2 replicas × {concurrency} tasks, 4 attempts per key | {result['throughput']:,.0f} | "
            f"{'yes' if result['exact'] else 'NO'} |"
        )
    lines += ["", f"Target: a claim p50 ≤ {TARGET_P50_MS:g} ms, one statement. " + "; ".join(verdicts) + "."]
    return "\n".join(lines)


async def measure(url: str, claims: int, concurrency: int, *, postgres: bool) -> dict:
    """Every figure for one migrated database."""
    await upgrade(url)
    samples, per_claim = await latencies(url, claims)
    if postgres:
        samples["raw asyncpg, one round trip"] = await raw_asyncpg(url, claims)
    throughput, exact = await contention(url, claims // 2, concurrency)
    return {"samples": samples, "per_claim": per_claim, "throughput": throughput, "exact": exact}


async def run(claims: int, concurrency: int, postgres: str | None) -> str:
    """Measure on SQLite, and on PostgreSQL when a server is given, and render."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = normalize_database_url(f"sqlite:///{Path(tmp) / 'bench.db'}")
        results["SQLite"] = await measure(sqlite_url, claims, concurrency, postgres=False)
    if postgres:
        async with throwaway_postgres(postgres) as url:
            results["PostgreSQL"] = await measure(url, claims, concurrency, postgres=True)
    return render(results, concurrency)


def main() -> None:
    """Parse the arguments, run the benchmark, print the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=2000, help="claims per latency row (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent claimers per replica (default 16)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL server URL (default: $TEST_DATABASE_URL; none: SQLite only)",
    )
    args = parser.parse_args()
    print(asyncio.run(run(args.claims, args.concurrency, args.postgres)))


if __name__ == "__main__":
    main()
