"""Fault-test fixtures: a router clock the test moves, and helpers to read the ledger and replies."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from bot import composition
from bot.infra.db.tables import LedgerRow
from bot.router.router import ModelRouter
from tests.bolt_tasks import settle_listeners  # noqa: F401  (used by the fault tests)
from tests.faults.process import FrugalProcess

START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@dataclass
class StepClock:
    """The router's wall time: moves only when the test says, or when the router sleeps between retries."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, delay: timedelta) -> None:
        self.now += delay
        await asyncio.sleep(0)

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def router_clock(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    """Every Frugal started after this fixture runs its router on this clock."""
    clock = StepClock()
    monkeypatch.setattr(composition, "ModelRouter", functools.partial(ModelRouter, clock=clock, sleep=clock.sleep))
    return clock


@pytest.fixture
async def run_frugal(migrated_url, fake_openai, fake_slack, tmp_path) -> AsyncIterator[Callable[..., FrugalProcess]]:
    """Start `frugal run` processes on the test's database (SQLite and PostgreSQL); killed at teardown if still running."""
    started: list[FrugalProcess] = []

    async def run(**env: str) -> FrugalProcess:
        process = FrugalProcess(migrated_url, fake_openai, fake_slack, tmp_path, env=env)
        started.append(process)
        return await process.start()

    yield run
    for process in started:
        await process.close()


async def ledger_rows(frugal) -> list[Any]:
    """Every ledger row, oldest first."""
    async with frugal.container.engine.connect() as conn:
        return list((await conn.execute(select(LedgerRow).order_by(LedgerRow.id))).all())


def context_text(blocks: list[dict[str, Any]]) -> str:
    """The text of every context block of a reply (where the footer and the fallback note are)."""
    return " ".join(
        element.get("text", "") for block in blocks if block.get("type") == "context" for element in block["elements"]
    )
