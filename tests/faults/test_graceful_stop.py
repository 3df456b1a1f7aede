"""SIGTERM to a real `frugal run` with requests in flight: nothing new taken, what is in flight finished or settled."""

from __future__ import annotations

import asyncio
import json
import signal
from decimal import Decimal

import pytest

from bot.catalog import Catalog
from bot.ports.completion import CallContext, CompletionRequest
from bot.router.router import ModelRouter
from bot.slack.in_flight import RESTARTING
from tests.fakes.slack_signing import app_mention_event, event_callback
from tests.faults.process import (
    FrugalProcess,
    books,
    chat_calls,
    set_channel_quota,
    until,
)

IN_FLIGHT = 20


async def _rewrites_in_flight(frugal: FrugalProcess, fake_openai, count: int, already: int = 0) -> list[str]:
    """Send ``count`` /rewrite commands, acked, and return once theirs and ``already`` other model calls have started."""
    sent = await asyncio.gather(*(frugal.command("/rewrite", f"draft number {i}") for i in range(count)))
    assert [status for status, _ in sent] == [200] * count
    await until(lambda: chat_calls(fake_openai) == already + count, 10, f"{already + count} model calls started")
    return [name for _, name in sent]


async def test_sigterm_finishes_every_request_in_flight_within_the_grace(
    run_frugal, migrated_url, make_settings, fake_openai, fake_slack
):
    await set_channel_quota(make_settings(migrated_url), "1000 requests/day")
    frugal = await run_frugal(FRUGAL_SHUTDOWN_GRACE="12")
    fake_openai.latency = 3.0
    mentions = [
        event_callback(app_mention_event(f"<@UBOT> rewrite mention {i}"), event_id=f"EvDONE{i}") for i in range(4)
    ]
    assert await asyncio.gather(*(frugal.post(body, kind) for body, kind in mentions)) == [200] * len(mentions)
    names = await _rewrites_in_flight(frugal, fake_openai, IN_FLIGHT - len(mentions), already=len(mentions))

    frugal.signal(signal.SIGTERM)
    # Out of the load balancer at once: while every answer is still on its way.
    statuses = []
    while not statuses or statuses[-1] != 503:
        statuses.append(await frugal.health())
        await asyncio.sleep(0.02)
    answered = [call for call in fake_slack.calls if call.method.startswith(("response_url:", "chat.postMessage"))]
    assert answered == [], "503 came only after answers"
    # A delivery arriving now goes to another process (Slack retries it): nothing here is started for it.
    late_status, late = await frugal.command("/rewrite", "too late")
    assert late_status == 503

    assert await frugal.exited(timeout=20) == 0, frugal.output()
    answers = [[call.params["text"] for call in fake_slack.calls_to(f"response_url:{name}")] for name in names]
    assert answers == [[f"[gpt-4.1-nano] draft number {i}"] for i in range(len(names))]
    in_threads = fake_slack.calls_to("chat.postMessage")
    assert sorted((call.params["text"], call.params["thread_ts"]) for call in in_threads) == sorted(
        (f"[gpt-4.1-nano] mention {i}", json.loads(body)["event"]["ts"]) for i, (body, _) in enumerate(mentions)
    )
    assert fake_slack.calls_to(f"response_url:{late}") == []
    assert chat_calls(fake_openai) == IN_FLIGHT
    charged = await books(migrated_url)
    assert [row.outcome for row in charged.rows] == ["ok"] * IN_FLIGHT
    assert len({row.request_key for row in charged.rows}) == IN_FLIGHT
    assert (charged.used, charged.reserved, charged.holds) == (Decimal(IN_FLIGHT), 0, 0)
    output = frugal.output()
    assert "Frugal stopped with every request answered" in output
    assert "Traceback" not in output


async def test_requests_unfinished_at_the_deadline_are_recorded_released_and_told(
    run_frugal, migrated_url, make_settings, fake_openai, fake_slack
):
    await set_channel_quota(make_settings(migrated_url), "1000 requests/day")
    frugal = await run_frugal(FRUGAL_SHUTDOWN_GRACE="1")
    fake_openai.latency = 8.0  # longer than the grace and the wind-down together: the model never answers
    mentions = [
        event_callback(app_mention_event(f"<@UBOT> rewrite mention {i}"), event_id=f"EvSTOP{i}") for i in range(4)
    ]
    assert await asyncio.gather(*(frugal.post(body, kind) for body, kind in mentions)) == [200] * len(mentions)
    names = await _rewrites_in_flight(frugal, fake_openai, IN_FLIGHT - len(mentions), already=len(mentions))

    frugal.signal(signal.SIGTERM)

    assert await frugal.exited(timeout=15) == 0, frugal.output()
    # Each user is told, where the answer would have gone, that nothing was charged.
    answers = [[call.params["text"] for call in fake_slack.calls_to(f"response_url:{name}")] for name in names]
    assert answers == [[RESTARTING]] * len(names)
    in_threads = fake_slack.calls_to("chat.postMessage")
    assert sorted((call.params["text"], call.params["thread_ts"]) for call in in_threads) == sorted(
        (RESTARTING, json.loads(body)["event"]["ts"]) for body, _ in mentions
    )
    charged = await books(migrated_url)
    # The model was called, and may bill: each call has its row, marked as cut off, priced as unknown.
    assert [(row.outcome, row.attempt, row.cost_usd) for row in charged.rows] == [("interrupted", 1, None)] * IN_FLIGHT
    assert len({row.request_key for row in charged.rows}) == IN_FLIGHT
    assert {f"event:EvSTOP{i}" for i in range(len(mentions))} <= {row.request_key for row in charged.rows}
    # And every hold is released: the quota counts nothing of them.
    assert (charged.used, charged.reserved, charged.holds) == (0, 0, 0)
    output = frugal.output()
    assert f"Frugal stopped {IN_FLIGHT} requests at the end of the grace period" in output
    assert "Traceback" not in output


# --- the router's part, on its own: a call cut off is recorded even when cut off twice --------


class _HangingModel:
    """A ChatModel whose every call waits until it is cancelled."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def complete(self, request):
        self.called.set()
        await asyncio.Event().wait()


class _SlowLedger:
    """A ledger whose writes take until the test lets them through."""

    def __init__(self) -> None:
        self.entries = []
        self.writing = asyncio.Event()
        self.let_through = asyncio.Event()

    async def record(self, entry) -> None:
        self.writing.set()
        await self.let_through.wait()
        self.entries.append(entry)


async def test_a_model_call_cancelled_twice_still_gets_its_ledger_row():
    model, ledger = _HangingModel(), _SlowLedger()
    router = ModelRouter(model, Catalog.load(), ledger, ("gpt-4.1-nano",), baseline_model="gpt-4o")
    ctx = CallContext(team_id="T0001", channel_id="C0001", user_id="U0001", request_key="command:cut", task="rewrite")
    call = asyncio.create_task(
        router.complete(ctx, CompletionRequest(messages=({"role": "user", "content": "hello"},), max_tokens=50))
    )
    await asyncio.wait_for(model.called.wait(), 5)

    call.cancel()
    await asyncio.wait_for(ledger.writing.wait(), 5)
    call.cancel()  # the stop's wind-down gives up on it while its row is being written
    with pytest.raises(asyncio.CancelledError):
        await call
    ledger.let_through.set()
    await until(lambda: bool(ledger.entries), 5, "the row written")

    [entry] = ledger.entries
    assert (entry.request_key, entry.outcome, entry.attempt, entry.requested_model) == (
        "command:cut",
        "interrupted",
        1,
        "gpt-4.1-nano",
    )
    assert (entry.cost_usd, entry.served_model, entry.error_code) == (None, None, None)
