"""The model_status table on SQLite and PostgreSQL: mark, renew, list and clear."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.model_status import SqlModelStatusStore
from bot.ports.model_status import UnavailableModel

AT = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


async def test_marks_are_stored_renewed_and_cleared(migrated_url):
    engine = make_engine(migrated_url)
    store = SqlModelStatusStore(make_sessionmaker(engine))
    try:
        await store.mark_unavailable(UnavailableModel("gpt-4o-mini", "model_not_found", AT, AT + timedelta(hours=24)))
        await store.mark_unavailable(UnavailableModel("gpt-4.1-nano", "model_not_found", AT, AT + timedelta(hours=24)))
        later = AT + timedelta(hours=25)
        await store.mark_unavailable(
            UnavailableModel("gpt-4.1-nano", "model_not_found", later, later + timedelta(hours=24))
        )

        marks = await store.unavailable()
        assert [(m.model, m.marked_at, m.retry_at) for m in marks] == [
            ("gpt-4.1-nano", later, later + timedelta(hours=24)),
            ("gpt-4o-mini", AT, AT + timedelta(hours=24)),
        ]
        assert all(m.retry_at.tzinfo is not None for m in marks)

        await store.clear("gpt-4.1-nano")
        await store.clear("never-marked")
        assert [m.model for m in await store.unavailable()] == ["gpt-4o-mini"]
    finally:
        await engine.dispose()
