"""Quota reserve + settle: latency (p50, p99), throughput under contention, round trips; prints markdown.

Measures the real `SqlQuotaStore` (bot/infra/db/quota_store.py) on an engine built by
`bot.infra.db.engine.make_engine`, as `frugal run` builds it, on a migrated temp-file SQLite
database and on a throwaway PostgreSQL database (created from TEST_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres, dropped afterwards; `--no-postgres` skips it).
Every reserve checks two limits (requests per day and USD per month on one channel) and holds
the worst case of a two-model chain.

- sequential: one reserve then one settle at a time; each timed on its own;
- contention: `--workers` tasks reserving and settling on the same channel's counters at once
  (the worst case: every request locks the same rows); operations per second and per-op latency;
- round trips (PostgreSQL): counted by a local TCP proxy between the engine and the server (a
  round trip = the client sending after the server answered), so BEGIN/COMMIT, pool pre-pings and
  prepares all show; statements counted with SQLAlchemy's before_cursor_execute, on the engine
  as `frugal run` builds it.

    python bench/quota.py
    python bench/quota.py --ops 3000 --workers 32
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
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.databases import throwaway_postgres  # noqa: E402
from bot.config import normalize_database_url  # noqa: E402
from bot.infra.db.engine import make_engine  # noqa: E402
from bot.infra.db.migrate import upgrade  # noqa: E402
from bot.infra.db.quota_store import SqlQuotaStore  # noqa: E402
from bot.ports.quota import Metric, Period  # noqa: E402
from bot.ports.quota_store import Level, LimitRecord, ReserveRequest, Scope, Usage  # noqa: E402
from bot.services.quota_spec import period_starts  # noqa: E402

TARGET_P50_MS = 2.0
TEAM, CHANNEL = "TBENCH", "CBENCH"
LEVELS = (Level(tokens=1_100, usd=Decimal("0.00044")), Level(tokens=1_100, usd=Decimal("0.00066")))
USAGE = Usage(requests=1, tokens=300, usd=Decimal("0.00009"))


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _request(now: datetime) -> ReserveRequest:
    return ReserveRequest(
        reservation_id=str(uuid.uuid4()),
        request_key=f"bench:{uuid.uuid4().hex}",
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id="UBENCH",
        levels=LEVELS,
        starts=period_starts(now, ZoneInfo("UTC")),
        now=now,
        expires_at=now + timedelta(minutes=10),
    )


async def _prepare(store: SqlQuotaStore) -> None:
    now = datetime.now(timezone.utc)
    for metric, period, amount in ((Metric.REQUESTS, Period.DAY, 10**9), (Metric.USD, Period.MONTH, 10**6)):
        limit = LimitRecord(Scope.CHANNEL, CHANNEL, metric, period, Decimal(amount))
        await store.set_limit(TEAM, limit, set_by="UBENCH", starts=period_starts(now, ZoneInfo("UTC")), now=now)


async def _one(store: SqlQuotaStore, reserves: list[float], settles: list[float]) -> None:
    started = time.perf_counter()
    reservation = await store.reserve(_request(datetime.now(timezone.utc)))
    reserved = time.perf_counter()
    if not reservation.held or not await store.settle(reservation.reservation_id, USAGE):
        raise RuntimeError("the benchmark's limits are too small: a reserve was refused")
    settles.append((time.perf_counter() - reserved) * 1000)
    reserves.append((reserved - started) * 1000)


async def sequential(store: SqlQuotaStore, ops: int) -> dict[str, float]:
    """One reserve and settle at a time."""
    for _ in range(50):  # warm the pool and the prepared-statement caches
        await _one(store, [], [])
    reserves: list[float] = []
    settles: list[float] = []
    for _ in range(ops):
        await _one(store, reserves, settles)
    return {
        "reserve_p50": statistics.median(reserves),
        "reserve_p99": _percentile(reserves, 0.99),
        "settle_p50": statistics.median(settles),
        "settle_p99": _percentile(settles, 0.99),
    }


async def contention(store: SqlQuotaStore, ops: int, workers: int) -> dict[str, float]:
    """`workers` tasks on the same counters; reserve+settle pairs per second."""
    reserves: list[float] = []
    settles: list[float] = []
    per_worker = max(1, ops // workers)

    async def worker() -> None:
        for _ in range(per_worker):
            await _one(store, reserves, settles)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    return {
        "pairs_per_s": per_worker * workers / elapsed,
        "reserve_p50": statistics.median(reserves),
        "reserve_p99": _percentile(reserves, 0.99),
        "settle_p50": statistics.median(settles),
        "settle_p99": _percentile(settles, 0.99),
    }


class RoundTripProxy:
    """A TCP proxy that counts round trips: each time the client speaks after the server has answered."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self.round_trips = 0
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> RoundTripProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        state = {"answered": True}

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_client: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if from_client and state["answered"]:
                        self.round_trips += 1
                    state["answered"] = not from_client
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_reader, server_writer, True), pump(server_reader, client_writer, False))


async def round_trips(url: str, *, ops: int = 200) -> dict[str, float]:
    """Round trips and statements per reserve and per settle, through the counting proxy."""
    parsed = make_url(url)
    async with RoundTripProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
        proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(proxied)
        statements = {"n": 0}
        event.listen(
            engine.sync_engine, "before_cursor_execute", lambda *a, **k: statements.update(n=statements["n"] + 1)
        )
        store = SqlQuotaStore(engine)
        held: list[str] = []
        try:
            for _ in range(50):
                await _one(store, [], [])
            counts = {}
            for name in ("reserve", "settle"):
                before_trips, before_statements = proxy.round_trips, statements["n"]
                for _ in range(ops):
                    if name == "reserve":
                        reservation = await store.reserve(_request(datetime.now(timezone.utc)))
                        held.append(reservation.reservation_id)
                    else:
                        await store.settle(held.pop(), USAGE)
                counts[f"{name}_round_trips"] = (proxy.round_trips - before_trips) / ops
                counts[f"{name}_statements"] = (statements["n"] - before_statements) / ops
            return counts
        finally:
            await engine.dispose()


async def measure(url: str, ops: int, workers: int) -> dict[str, dict[str, float]]:
    """Migrate, then the sequential and contended passes on an engine as `frugal run` builds it."""
    await upgrade(url)
    engine: AsyncEngine = make_engine(url)
    try:
        store = SqlQuotaStore(engine)
        await _prepare(store)
        return {"sequential": await sequential(store, ops), "contention": await contention(store, ops, workers)}
    finally:
        await engine.dispose()


def _table(results: dict[str, dict[str, dict[str, float]]], trips: dict[str, dict[str, float]], workers: int) -> str:
    lines = [
        "| database | pass | reserve p50 | reserve p99 | settle p50 | settle p99 | reserve+settle pairs/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for database, passes in results.items():
        for name, figures in passes.items():
            label = f"{workers} workers, one channel" if name == "contention" else name
            pairs = f"{figures['pairs_per_s']:,.0f}" if "pairs_per_s" in figures else "—"
            lines.append(
                f"| {database} | {label} | {figures['reserve_p50']:.2f} ms | {figures['reserve_p99']:.2f} ms "
                f"| {figures['settle_p50']:.2f} ms | {figures['settle_p99']:.2f} ms | {pairs} |"
            )
    if trips:
        lines += [
            "",
            "| PostgreSQL engine | round trips per reserve | per settle | SQL statements per reserve | per settle |",
            "|---|---|---|---|---|",
        ]
        for label, counts in trips.items():
            lines.append(
                f"| {label} | {counts['reserve_round_trips']:.2f} | {counts['settle_round_trips']:.2f} "
                f"| {counts['reserve_statements']:.2f} | {counts['settle_statements']:.2f} |"
            )
    if "PostgreSQL" in results:
        lines.append("")
        figures = results["PostgreSQL"]["sequential"]
        met = max(figures["reserve_p50"], figures["settle_p50"]) <= TARGET_P50_MS
        lines.append(
            f"Target on PostgreSQL, p50 ≤ {TARGET_P50_MS:g} ms each (sequential): {'met' if met else 'NOT met'}."
        )
    return "\n".join(lines)


async def run(ops: int, workers: int, postgres: str | None) -> str:
    """Every pass on every database; the markdown table."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    trips: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = await measure(normalize_database_url(f"sqlite:///{tmp}/bench.db"), ops, workers)
    if postgres:
        async with throwaway_postgres(postgres) as url:
            results["PostgreSQL"] = await measure(url, ops, workers)
            trips["as `frugal run` builds it"] = await round_trips(url)
    return _table(results, trips, workers)


def main() -> None:
    """Parse arguments, run, print markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="reserve+settle pairs per pass (default 1000)")
    parser.add_argument("--workers", type=int, default=16, help="concurrent tasks in the contention pass")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    postgres = (
        None
        if args.no_postgres
        else os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    print(asyncio.run(run(args.ops, args.workers, postgres)))


if __name__ == "__main__":
    main()
