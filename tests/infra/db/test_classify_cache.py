"""The /classify cache end to end: the same text and labels within 24 h cost nothing, and nothing of the text is kept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text

from bot.infra.db.classify_cache import SqlClassifyCache
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.tables import LedgerRow
from bot.ports.classify_cache import CachedLabel
from bot.services.classify import CACHE_NOTE, cache_key
from tests.fakes.openai_server import Reply


async def _classify(frugal, fake_slack, text: str, **fields):
    _, name = await frugal.command("/classify", text, **fields)
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    return answer.params


async def test_the_same_text_and_labels_are_answered_from_the_cache_at_no_cost(frugal, fake_openai, fake_slack):
    fake_openai.set_behaviour("gpt-4.1-nano", Reply('{"label": "bug report"}'))

    first = await _classify(frugal, fake_slack, "[question, bug report] the build is broken")
    again = await _classify(frugal, fake_slack, "[question, bug report] the build is broken")
    other_labels = await _classify(frugal, fake_slack, "[bug report, praise] the build is broken")

    assert len(fake_openai.requests) == 2  # the repeat made no call
    assert "bug report" in again["text"]
    assert CACHE_NOTE in str(again["blocks"]) and CACHE_NOTE not in str(first["blocks"])
    assert "$0.00" in str(again["blocks"])
    assert CACHE_NOTE not in str(other_labels["blocks"])
    async with frugal.container.engine.connect() as conn:
        assert len((await conn.execute(select(LedgerRow))).all()) == 2
        stored = (await conn.execute(text("SELECT * FROM classify_cache"))).all()
    # A hash, a label, a model, a time: never the text.
    assert stored and all("broken" not in " ".join(map(str, row)) for row in stored)


def test_the_key_depends_on_the_workspace_the_labels_and_the_text():
    key = cache_key("T1", ("a", "b"), "hello")
    assert len(key) == 64 and "hello" not in key
    assert (
        len(
            {
                key,
                cache_key("T2", ("a", "b"), "hello"),
                cache_key("T1", ("b", "a"), "hello"),
                cache_key("T1", ("a", "b"), "hello!"),
            }
        )
        == 4
    )


async def test_entries_older_than_a_day_are_not_used_and_are_purged(migrated_url):
    engine = make_engine(migrated_url)
    try:
        cache = SqlClassifyCache(make_sessionmaker(engine))
        now = datetime.now(timezone.utc)
        await cache.put("k" * 64, "T1", CachedLabel("question", 0.9, "gpt-6-luna", now - timedelta(hours=25)))

        assert await cache.get("k" * 64, now - timedelta(hours=24)) is None
        assert (await cache.get("k" * 64, now - timedelta(hours=26))).confidence == 0.9
        assert await cache.purge(now - timedelta(hours=24)) == 1
        assert await cache.get("k" * 64, now - timedelta(days=30)) is None
    finally:
        await engine.dispose()
