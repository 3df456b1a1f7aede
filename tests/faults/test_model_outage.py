"""The primary model failing mid-run: later requests are answered by the fallback, nothing is lost, the primary is probed."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.infra.db.model_status import ModelStatusRow
from tests.fakes.openai_server import Fail
from tests.fakes.slack_server import Call
from tests.faults.conftest import context_text, ledger_rows

PRIMARY, FALLBACK = "gpt-4.1-nano", "gpt-4o-mini"
SERVER_ERROR_NOTE = f"{FALLBACK} answered because {PRIMARY} had a server error"
NOT_FOUND_NOTE = f"{FALLBACK} answered because {PRIMARY} is unavailable (retired, or no access)"


async def rewrite(frugal, fake_slack, text: str) -> Call:
    """One /rewrite through the running app; its single answer on the response_url."""
    response, name = await frugal.command("/rewrite", text)
    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}", timeout=15)
    return answer


async def stream(frugal, fake_slack, prefix: str, count: int) -> list[Call]:
    """`count` rewrites one after another, as a channel's steady traffic."""
    return [await rewrite(frugal, fake_slack, f"{prefix} {i}") for i in range(count)]


def assert_answered_by(answers: list[Call], prefix: str, model: str, note: str | None) -> None:
    for i, answer in enumerate(answers):
        assert answer.params["text"] == f"[{model}] {prefix} {i}"
        footer = context_text(answer.params["blocks"])
        if note is None:
            assert "answered because" not in footer
        else:
            assert note in footer


async def assert_ledger_has_every_attempt(frugal, fake_openai, answered: int) -> list:
    rows = await ledger_rows(frugal)
    # One row per request the endpoint saw — failed attempts included — and one "ok" row per answer.
    assert len(rows) == len(fake_openai.requests)
    assert sorted(r.requested_model for r in rows) == sorted(r.json["model"] for r in fake_openai.requests)
    ok = [r for r in rows if r.outcome == "ok"]
    assert len(ok) == answered == len({r.request_key for r in ok})
    return rows


async def test_primary_server_errors_mid_run_fail_over_then_probe(
    start_frugal, migrated_url, router_clock, fake_openai, fake_slack
):
    frugal = await start_frugal(migrated_url)
    assert_answered_by(await stream(frugal, fake_slack, "before", 3), "before", PRIMARY, None)

    fake_openai.set_behaviour(PRIMARY, Fail.server_error())
    during = await stream(frugal, fake_slack, "during", 8)

    assert_answered_by(during, "during", FALLBACK, SERVER_ERROR_NOTE)
    # Three failed attempts (a retry, then one more request) cool the primary down; later requests skip it.
    assert len(fake_openai.calls_for(PRIMARY)) == 3 + 3
    rows = await assert_ledger_has_every_attempt(frugal, fake_openai, answered=11)
    errors = [r for r in rows if r.outcome == "error"]
    assert [(r.requested_model, r.served_model, r.error_code) for r in errors] == [(PRIMARY, None, "server_error")] * 3
    assert all(r.cost_usd == 0 for r in errors)

    # After the 30 s cool-down one request probes the primary; it still fails, so the wait doubles.
    router_clock.advance(seconds=31)
    assert_answered_by(await stream(frugal, fake_slack, "probe", 2), "probe", FALLBACK, SERVER_ERROR_NOTE)
    assert len(fake_openai.calls_for(PRIMARY)) == 7

    fake_openai.set_behaviour(PRIMARY, None)
    router_clock.advance(seconds=30)
    assert_answered_by(await stream(frugal, fake_slack, "still", 1), "still", FALLBACK, SERVER_ERROR_NOTE)
    assert len(fake_openai.calls_for(PRIMARY)) == 7
    router_clock.advance(seconds=31)
    assert_answered_by(await stream(frugal, fake_slack, "healed", 2), "healed", PRIMARY, None)
    await assert_ledger_has_every_attempt(frugal, fake_openai, answered=16)


async def test_primary_not_found_mid_run_is_marked_unavailable_then_probed(
    start_frugal, migrated_url, router_clock, fake_openai, fake_slack
):
    frugal = await start_frugal(migrated_url)
    assert_answered_by(await stream(frugal, fake_slack, "before", 3), "before", PRIMARY, None)

    fake_openai.set_behaviour(PRIMARY, Fail.model_not_found(PRIMARY))
    during = await stream(frugal, fake_slack, "during", 6)

    assert_answered_by(during, "during", FALLBACK, NOT_FOUND_NOTE)
    # A 404 is not retried: one failed attempt, then the primary is skipped by every request.
    assert len(fake_openai.calls_for(PRIMARY)) == 3 + 1
    rows = await assert_ledger_has_every_attempt(frugal, fake_openai, answered=9)
    assert [(r.requested_model, r.error_code) for r in rows if r.outcome == "error"] == [(PRIMARY, "model_not_found")]
    async with frugal.container.engine.connect() as conn:
        [mark] = (await conn.execute(select(ModelStatusRow))).all()
    assert mark.model == PRIMARY

    # Still skipped an hour later (other replicas read the same mark); probed once the day is over.
    router_clock.advance(hours=1)
    assert_answered_by(await stream(frugal, fake_slack, "later", 1), "later", FALLBACK, NOT_FOUND_NOTE)
    assert len(fake_openai.calls_for(PRIMARY)) == 4
    fake_openai.set_behaviour(PRIMARY, None)
    router_clock.advance(hours=24)
    assert_answered_by(await stream(frugal, fake_slack, "back", 2), "back", PRIMARY, None)
    async with frugal.container.engine.connect() as conn:
        assert (await conn.execute(select(ModelStatusRow))).all() == []
    await assert_ledger_has_every_attempt(frugal, fake_openai, answered=12)


async def test_concurrent_burst_while_the_primary_fails_loses_no_request(
    start_frugal, migrated_url, router_clock, fake_openai, fake_slack
):
    frugal = await start_frugal(migrated_url)
    fake_openai.set_behaviour(PRIMARY, Fail.server_error())
    fake_openai.latency = 0.05

    sent = await asyncio.gather(*(frugal.command("/rewrite", f"burst {i}") for i in range(20)))

    answers = []
    for response, name in sent:
        assert response.status == 200
        [answer] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
        answers.append(answer)
    assert_answered_by(answers, "burst", FALLBACK, SERVER_ERROR_NOTE)
    await assert_ledger_has_every_attempt(frugal, fake_openai, answered=20)
