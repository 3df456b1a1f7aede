"""QuotaService through the real router, the real OpenAI client on the fake server, and real databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.catalog import Catalog
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.quota_store import SqlQuotaStore
from bot.infra.db.tables import LedgerRow
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.completion import CallContext, CompletionFailed, CompletionRequest
from bot.ports.quota import Metric
from bot.ports.quota_store import Scope
from bot.router.router import ModelRouter
from bot.services.quota import QuotaExceeded, QuotaService, prompt_token_bound
from bot.services.quota_spec import parse_limit
from tests.fakes.openai_server import Fail, Hang, Reply

UTC = timezone.utc
TEAM, CHANNEL, USER = "T0001", "C0001", "U0001"
REQUEST = CompletionRequest(messages=({"role": "user", "content": "hello there"},), max_tokens=1000)


@dataclass
class Clock:
    """Time that moves only when told to."""

    now: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, delay: timedelta) -> None:
        self.now += delay


@dataclass
class Process:
    """One Frugal process's quota service and gated router, on its own engine and HTTP client."""

    quota: QuotaService
    router: ModelRouter
    gated: Any
    engine: AsyncEngine
    closers: list[Callable[[], Any]] = field(default_factory=list)


@pytest.fixture
async def start_process(migrated_url, fake_openai) -> AsyncIterator[Callable[..., Any]]:
    """Start Frugal's quota and routing parts as one process would (several may share a database)."""
    processes: list[Process] = []

    async def start(
        chain: tuple[str, ...] = ("gpt-4.1-nano", "gpt-4o-mini"),
        *,
        clock: Clock | None = None,
        tz: str = "UTC",
        hold_for: timedelta = timedelta(minutes=10),
    ) -> Process:
        clock = clock or Clock()
        engine = make_engine(migrated_url)
        catalog = Catalog.load()
        chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
        router = ModelRouter(
            chat,
            catalog,
            SqlLedger(make_sessionmaker(engine)),
            chain,
            baseline_model="gpt-4o",
            clock=clock,
            sleep=clock.sleep,
        )
        quota = QuotaService(SqlQuotaStore(engine), catalog, chain, tz=ZoneInfo(tz), clock=clock, hold_for=hold_for)
        process = Process(quota, router, quota.gate(router), engine, [chat.close, engine.dispose])
        processes.append(process)
        return process

    yield start
    for process in processes:
        for close in process.closers:
            await close()


def ctx(key: str, channel: str = CHANNEL, user: str = USER) -> CallContext:
    return CallContext(team_id=TEAM, channel_id=channel, user_id=user, request_key=key, task="rewrite")


async def ledger_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(LedgerRow))).scalar_one()


async def the_quota(process: Process, metric: Metric, at: datetime | None = None):
    uses = await process.quota.channel_quotas(TEAM, CHANNEL, at or process.quota._clock())
    [use] = [u for u in uses if u.metric is metric]
    return use


async def test_twenty_concurrent_requests_against_five_a_day_make_exactly_five_calls(start_process, fake_openai):
    process = await start_process()
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("5 requests/day"), set_by="U9")
    fake_openai.latency = 0.05  # keep the first answers in flight while the others reserve

    results = await asyncio.gather(
        *(process.gated.complete(ctx(f"command:{i}"), REQUEST) for i in range(20)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 15 and len(results) - len(refused) == 5
    assert len(fake_openai.requests) == 5
    assert await ledger_rows(process.engine) == 5
    use = await the_quota(process, Metric.REQUESTS)
    assert (use.used, use.reserved) == (5, 0)
    assert "5 of 5 requests used" in str(refused[0]) or "held by requests in progress" in str(refused[0])
    assert str(refused[0]).endswith("Nothing was charged.")


async def test_two_processes_sharing_one_database_share_the_limit(start_process, fake_openai):
    one, two = await start_process(), await start_process()
    await one.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("5 requests/day"), set_by="U9")
    fake_openai.latency = 0.05

    results = await asyncio.gather(
        *((one if i % 2 else two).gated.complete(ctx(f"event:{i}"), REQUEST) for i in range(20)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, QuotaExceeded) for r in results) == 15
    assert len(fake_openai.requests) == 5
    assert (await the_quota(two, Metric.REQUESTS)).used == 5


async def test_a_usd_limit_settles_to_the_exact_cost(start_process, fake_openai):
    process = await start_process()
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("$5/month"), set_by="U9")
    fake_openai.script("gpt-4.1-nano", Reply("Hi.", prompt_tokens=1000, completion_tokens=500, cached_tokens=200))

    completion = await process.gated.complete(ctx("command:1"), REQUEST)

    # 800 × $0.10 + 200 × $0.025 + 500 × $0.40 per million tokens
    assert completion.cost_usd == Decimal("0.000285")
    use = await the_quota(process, Metric.USD)
    assert (use.used, use.reserved) == (Decimal("0.000285"), 0)


async def test_the_refusal_names_the_limit_use_and_reset_and_charges_nothing(start_process, fake_openai):
    process = await start_process()
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("$0.0005/month"), set_by="U9")
    fake_openai.script("gpt-4.1-nano", Reply("Hi.", prompt_tokens=1000, completion_tokens=500))
    await process.gated.complete(ctx("command:1"), REQUEST)  # $0.0003 spent; the worst case is ~$0.0004

    with pytest.raises(QuotaExceeded) as refused:
        await process.gated.complete(ctx("command:2"), REQUEST)

    assert refused.value.use.metric is Metric.USD and refused.value.use.used == Decimal("0.0003")
    assert str(refused.value) == (
        "This channel's limit of $0.0005 per month has no room for this request ($0.0003 of $0.0005 used); "
        "it resets on Tue 1 Dec 00:00 (UTC). Nothing was charged."
    )
    assert len(fake_openai.requests) == 1 and await ledger_rows(process.engine) == 1


async def test_a_fallback_whose_worst_case_does_not_fit_is_not_tried(start_process, fake_openai):
    process = await start_process(chain=("gpt-4.1-nano", "gpt-4o"))
    # The worst case is ~$0.0004 on gpt-4.1-nano but ~$0.01 on gpt-4o.
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("$0.005/day"), set_by="U9")
    fake_openai.script("gpt-4.1-nano", Fail.server_error(), Fail.server_error(), Fail.server_error())

    with pytest.raises(CompletionFailed) as failed:
        await process.gated.complete(ctx("command:1"), REQUEST)

    assert not isinstance(failed.value, QuotaExceeded)
    assert "gpt-4o was not tried" in str(failed.value) and "Nothing was charged" in str(failed.value)
    assert fake_openai.calls_for("gpt-4o") == [] and fake_openai.calls_for("gpt-4.1-nano")
    use = await the_quota(process, Metric.USD)
    assert (use.used, use.reserved) == (0, 0)


async def test_the_fallback_is_tried_when_it_fits(start_process, fake_openai):
    process = await start_process(chain=("gpt-4.1-nano", "gpt-4o"))
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("$1/day"), set_by="U9")
    fake_openai.script("gpt-4.1-nano", Fail.model_not_found("gpt-4.1-nano"))
    fake_openai.script("gpt-4o", Reply("Hi.", prompt_tokens=100, completion_tokens=10))

    completion = await process.gated.complete(ctx("command:1"), REQUEST)

    assert completion.served_model == "gpt-4o"
    # 100 × $2.50 + 10 × $10 per million tokens
    assert (await the_quota(process, Metric.USD)).used == Decimal("0.00035")


async def test_a_crash_between_reserve_and_settle_leaves_no_phantom_spend(start_process, fake_openai):
    clock = Clock()
    crashed = await start_process(clock=clock, hold_for=timedelta(minutes=5))
    await crashed.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("$1/day"), set_by="U9")
    await crashed.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("3 requests/day"), set_by="U9")
    # Crash before the call: reserved, never called.
    await crashed.quota.reserve(ctx("command:before"), REQUEST)
    # Crash after the model answered: reserved, called (the ledger has it), never settled.
    fake_openai.script("gpt-4.1-nano", Reply("Hi.", prompt_tokens=1000, completion_tokens=500))
    await crashed.quota.reserve(ctx("command:after"), REQUEST)
    await crashed.router.complete(ctx("command:after"), REQUEST)
    assert (await the_quota(crashed, Metric.REQUESTS)).reserved == 2

    survivor = await start_process(clock=clock)
    assert await survivor.quota.expire() == 0  # not yet expired
    clock.now += timedelta(minutes=6)
    assert await survivor.quota.expire() == 2

    requests, usd = await the_quota(survivor, Metric.REQUESTS), await the_quota(survivor, Metric.USD)
    assert (requests.used, requests.reserved) == (1, 0)
    assert (usd.used, usd.reserved) == (Decimal("0.0003"), 0)


async def test_reading_quotas_expires_old_holds_first(start_process):
    clock = Clock()
    process = await start_process(clock=clock, hold_for=timedelta(minutes=5))
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("1 request/day"), set_by="U9")
    await process.quota.reserve(ctx("command:lost"), REQUEST)
    clock.now += timedelta(minutes=5, seconds=1)
    use = await the_quota(process, Metric.REQUESTS)
    assert (use.used, use.reserved) == (0, 0)


@pytest.mark.parametrize(
    ("limit", "start", "still_refused", "allowed_again"),
    [
        # New York: 23:59 on Wed 25 Nov is 04:59 UTC on the 26th; the day resets at local midnight.
        ("1 request/day", "2026-11-25T20:00-05:00", "2026-11-25T23:59-05:00", "2026-11-26T00:00-05:00"),
        # The week starts on Monday (30 Nov).
        ("1 request/week", "2026-11-25T20:00-05:00", "2026-11-29T23:59-05:00", "2026-11-30T00:00-05:00"),
        # The month starts on the 1st.
        ("1 request/month", "2026-11-02T09:00-05:00", "2026-11-30T23:59-05:00", "2026-12-01T00:00-05:00"),
        # DST starts on Sun 8 Mar 2026: that day is 23 hours long, and the next starts at 04:00 UTC.
        ("1 request/day", "2026-03-08T01:00-05:00", "2026-03-08T23:59-04:00", "2026-03-09T00:00-04:00"),
        # DST ends on Sun 1 Nov 2026: that day is 25 hours long.
        ("1 request/day", "2026-11-01T00:30-04:00", "2026-11-01T23:59-05:00", "2026-11-02T00:00-05:00"),
    ],
)
async def test_periods_reset_at_local_boundaries(
    start_process, fake_openai, limit, start, still_refused, allowed_again
):
    clock = Clock(datetime.fromisoformat(start))
    process = await start_process(clock=clock, tz="America/New_York")
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit(limit), set_by="U9")
    await process.gated.complete(ctx("command:1"), REQUEST)

    clock.now = datetime.fromisoformat(still_refused)
    with pytest.raises(QuotaExceeded) as refused:
        await process.gated.complete(ctx("command:2"), REQUEST)
    assert refused.value.use.resets_at == datetime.fromisoformat(allowed_again)
    assert "(America/New_York)" in str(refused.value)

    clock.now = datetime.fromisoformat(allowed_again)
    await process.gated.complete(ctx("command:3"), REQUEST)
    assert len(fake_openai.requests) == 2


async def test_default_and_user_limits_apply_and_the_tightest_decides(start_process, fake_openai):
    process = await start_process()
    quota = process.quota
    await quota.set_limit(TEAM, Scope.DEFAULT, "ignored", parse_limit("3 requests/day"), set_by="U9")
    await quota.set_limit(TEAM, Scope.USER, "U7", parse_limit("2 requests/day"), set_by="U9")
    await process.gated.complete(ctx("c:1", channel="C1", user="U7"), REQUEST)
    await process.gated.complete(ctx("c:2", channel="C2", user="U7"), REQUEST)
    with pytest.raises(QuotaExceeded) as refused:
        await process.gated.complete(ctx("c:3", channel="C1", user="U7"), REQUEST)
    assert refused.value.use.scope == "user" and str(refused.value).startswith("Your limit of 2 requests per day")
    await process.gated.complete(ctx("c:4", channel="C1", user="U8"), REQUEST)
    await process.gated.complete(ctx("c:5", channel="C1", user="U8"), REQUEST)
    with pytest.raises(QuotaExceeded) as refused:
        await process.gated.complete(ctx("c:6", channel="C1", user="U8"), REQUEST)
    assert refused.value.use.scope == "default"
    assert [r.amount for r in await quota.limits(TEAM, Scope.DEFAULT, "")] == [3]
    assert await quota.clear(TEAM, Scope.DEFAULT, "") == 1
    await process.gated.complete(ctx("c:7", channel="C1", user="U8"), REQUEST)
    assert len(fake_openai.requests) == 5


async def test_a_cancelled_call_and_a_failed_one_are_released(start_process, fake_openai):
    process = await start_process(chain=("gpt-4.1-nano",))
    await process.quota.set_limit(TEAM, Scope.CHANNEL, CHANNEL, parse_limit("2 requests/day"), set_by="U9")
    # Both answers are scripted up front, one per request in arrival order: changing the fake while the
    # first request is in flight let that request take the out-of-credit answer, which rests the only model.
    fake_openai.script("gpt-4.1-nano", Hang(5), Fail.insufficient_quota())
    call = asyncio.create_task(process.gated.complete(ctx("command:1"), REQUEST))
    try:
        async with asyncio.timeout(5):
            while not fake_openai.requests:
                await asyncio.sleep(0.01)
    finally:
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await call
    with pytest.raises(CompletionFailed, match="out of credit"):
        async with asyncio.timeout(10):
            await process.gated.complete(ctx("command:2"), REQUEST)
    assert len(fake_openai.requests) == 2
    use = await the_quota(process, Metric.REQUESTS)
    assert (use.used, use.reserved) == (0, 0)


def test_the_prompt_bound_covers_every_byte_and_the_schema():
    text = "héllo wörld ✓"
    request = CompletionRequest(messages=({"role": "user", "content": text},), max_tokens=10)
    assert prompt_token_bound(request) >= len(text.encode()) + len("user")
    with_schema = CompletionRequest(request.messages, max_tokens=10, json_schema={"type": "object"})
    assert prompt_token_bound(with_schema) - prompt_token_bound(request) == len('{"type": "object"}')


async def test_a_settle_interrupted_by_cancellation_still_finishes_and_its_failure_is_raised():
    from bot.services.quota import _to_the_end

    started, go, finished = asyncio.Event(), asyncio.Event(), []

    async def step(fail: bool) -> None:
        started.set()
        await go.wait()
        if fail:
            raise RuntimeError("the database went away")
        finished.append(True)

    for fail, expected in ((False, asyncio.CancelledError), (True, RuntimeError)):
        started.clear(), go.clear()
        caller = asyncio.create_task(_to_the_end(step(fail)))
        await started.wait()
        caller.cancel()
        await asyncio.sleep(0.01)
        assert not caller.done()  # still waiting for the step, not abandoning it
        go.set()
        with pytest.raises(expected):
            async with asyncio.timeout(5):
                await caller
    assert finished == [True]
