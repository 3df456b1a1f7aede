"""The digest's SQL while the database cannot be reached: StoreUnavailable with the driver's error as its cause."""

from __future__ import annotations

import socket
from datetime import datetime, time, timezone

import pytest
from sqlalchemy.exc import SQLAlchemyError

from bot.config import normalize_database_url
from bot.infra.db.digest_queries import SqlDigestQueries
from bot.infra.db.digest_store import SqlDigestStore
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.ports.digest_store import DigestSlot, Frequency, Subscription
from bot.ports.store import StoreUnavailable
from tests.conftest import _sqlite_workers, _sqlite_workers_end

NOW = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
SUB = Subscription(1, "T1", "C1", Frequency.DAILY, time(9), "UADMIN", datetime(2026, 11, 1, tzinfo=timezone.utc))
SLOT = DigestSlot(NOW, datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(request, tmp_path):
    """Sessions on a database that cannot be reached: a SQLite file in a missing folder, a PostgreSQL port closed."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'no-such-dir' / 'frugal.db'}"
    else:
        url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/frugal"
    workers_before = _sqlite_workers()
    engine = make_engine(normalize_database_url(url))
    yield make_sessionmaker(engine)
    await engine.dispose()
    await _sqlite_workers_end(_sqlite_workers() - workers_before)


# Every call the digest tick makes, then what /frugal digest and `frugal digest` make.
CALLS = {
    "subscriptions": lambda store: store.subscriptions(),
    "claimed": lambda store: store.claimed(["C1"], NOW),
    "claim": lambda store: store.claim(SUB, SLOT, "replica-a", NOW),
    "failed_runs": lambda store: store.failed_runs(3, NOW),
    "reclaim": lambda store: store.reclaim(1, 1, "replica-a", NOW),
    "record_message": lambda store: store.record_message(1, "1700000000.000100"),
    "mark_posted": lambda store: store.mark_posted(1, NOW),
    "mark_failed": lambda store: store.mark_failed(1, "channel_not_found", final=False),
    "subscribe": lambda store: store.subscribe("T1", "C1", Frequency.DAILY, time(9), "UADMIN", NOW),
    "unsubscribe": lambda store: store.unsubscribe("T1", "C1", NOW),
    "subscription": lambda store: store.subscription("T1", "C1"),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_every_store_call_raises_store_unavailable_from_the_drivers_error(sessions, call):
    with pytest.raises(StoreUnavailable) as raised:
        await call(SqlDigestStore(sessions))

    assert raised.value.__cause__ is not None and not isinstance(raised.value.__cause__, StoreUnavailable)


async def test_the_digests_ledger_queries_raise_store_unavailable(sessions):
    queries = SqlDigestQueries(sessions)

    with pytest.raises(StoreUnavailable):
        await queries.usage_groups("T1", "C1", [SLOT.period_start, SLOT.period_end])
    with pytest.raises(StoreUnavailable):
        await queries.top_users("T1", "C1", SLOT.period_start, SLOT.period_end, 5)


async def test_a_wrong_statement_is_not_taken_for_an_outage(database_url):
    # The database answers but has no tables (no migrations): a bug to see, not an outage to wait out.
    engine = make_engine(database_url)
    try:
        with pytest.raises(SQLAlchemyError) as raised:
            await SqlDigestStore(make_sessionmaker(engine)).subscriptions()
    finally:
        await engine.dispose()

    assert not isinstance(raised.value, StoreUnavailable)
