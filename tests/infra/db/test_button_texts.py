"""Button texts on SQLite and PostgreSQL: kept for a day under a random id, then gone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.infra.db.button_texts import LIFETIME, SqlButtonTexts
from bot.infra.db.engine import make_sessionmaker
from bot.ports.button_texts import ButtonText

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
ENTRY = ButtonText(
    team_id="T1",
    channel_id="C1",
    user_id="U1",
    kind="rewrite",
    text="Hello *all*",
    original="hi all",
    thread_ts="1700000000.000100",
)


async def test_an_entry_is_read_back_by_its_id_on_another_replica(engines):
    now = [T0]
    mine, other = (SqlButtonTexts(make_sessionmaker(engine), clock=lambda: now[0]) for engine in engines)
    button_id = await mine.put(ENTRY)
    # Committed when put returns: the other replica, which may get the click, sees it.
    assert await other.get(button_id) == ENTRY
    assert await other.get(button_id[:-1] + ("A" if button_id[-1] != "A" else "B")) is None
    assert await mine.put(ENTRY) != button_id, "each answer's buttons get their own id"


@pytest.mark.parametrize("forged", ["", "x" * 22 + "'", "<!channel>", 42, None, "a" * 200])
async def test_ids_that_frugal_never_made_are_nothing(engines, forged):
    store = SqlButtonTexts(make_sessionmaker(engines[0]))
    assert await store.get(forged) is None


async def test_entries_expire_after_a_day_and_are_purged(engines):
    now = [T0]
    store = SqlButtonTexts(make_sessionmaker(engines[0]), clock=lambda: now[0])
    old = await store.put(ENTRY)
    now[0] = T0 + timedelta(hours=23)
    young = await store.put(ENTRY)
    now[0] = T0 + LIFETIME
    assert await store.get(old) is None
    assert await store.get(young) == ENTRY
    assert await store.purge() == 1
    assert await store.purge() == 0
    assert await store.get(young) == ENTRY
