"""Router fixtures: the real OpenAI adapter on the fake server, with a clock that time-travels."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.catalog import Catalog
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.completion import CallContext, CompletionRequest
from bot.ports.ledger import LedgerEntry
from bot.ports.model_status import UnavailableModel
from bot.router.router import ModelRouter
from tests.fakes.openai_server import FakeOpenAI

START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
CTX = CallContext(team_id="T0001", channel_id="C0001", user_id="U0001", request_key="command:1", task="rewrite")
REQUEST = CompletionRequest(messages=({"role": "user", "content": "hello there"},), max_tokens=50)


@dataclass
class FakeClock:
    """Wall time that only moves when told to, or when the router sleeps."""

    now: datetime = START
    slept: list[timedelta] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, delay: timedelta) -> None:
        self.slept.append(delay)
        self.now += delay

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class MemoryLedger:
    """LedgerRepository in a list."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    async def record(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)


class MemoryStatusStore:
    """ModelStatusStore in a dict (the SQL one is tested on real databases)."""

    def __init__(self) -> None:
        self.marks: dict[str, UnavailableModel] = {}

    async def mark_unavailable(self, mark: UnavailableModel) -> None:
        self.marks[mark.model] = mark

    async def clear(self, model: str) -> None:
        self.marks.pop(model, None)

    async def unavailable(self) -> list[UnavailableModel]:
        return list(self.marks.values())


class RecordingAlerts:
    """AdminAlerts that remembers what it was told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, str, str | None]] = []

    async def alert(self, team_id: str | None, text: str, *, dedupe_key: str | None = None) -> None:
        self.sent.append((team_id, text, dedupe_key))

    @property
    def keys(self) -> list[str | None]:
        return [key for _, _, key in self.sent]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def status_store() -> MemoryStatusStore:
    return MemoryStatusStore()


@pytest.fixture
def alerts() -> RecordingAlerts:
    return RecordingAlerts()


@pytest.fixture
async def chat_model(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIChatModel]:
    model = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    yield model
    await model.close()


@pytest.fixture
def make_router(chat_model, clock, ledger, status_store, alerts) -> Callable[..., ModelRouter]:
    """A router on the fake server; keyword arguments override the constructor's."""

    def make(chain: tuple[str, ...] = ("gpt-4.1-nano", "gpt-4o-mini"), **overrides: Any) -> ModelRouter:
        options: dict[str, Any] = {
            "baseline_model": "gpt-4o",
            "clock": clock,
            "sleep": clock.sleep,
            "status_store": status_store,
            "alerts": alerts,
        }
        options.update(overrides)
        catalog = options.pop("catalog", None) or Catalog.load()
        return ModelRouter(options.pop("model", chat_model), catalog, ledger, chain, **options)

    return make
