"""The router against the fake OpenAI server: every row of the error table, cost, and the chain rules."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.catalog import Catalog
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.completion import CompletionFailed, CompletionRequest
from tests.fakes.openai_server import Drop, Fail, Hang, Reply
from tests.router.conftest import CTX, REQUEST

NANO, MINI = "gpt-4.1-nano", "gpt-4o-mini"


def outcomes(ledger) -> list[tuple[str, str, str | None, int]]:
    return [(e.requested_model, e.outcome, e.error_code, e.attempt) for e in ledger.entries]


# --- answered on the primary -----------------------------------------------------------------


async def test_primary_answers_with_exact_cost_baseline_and_energy(make_router, fake_openai, ledger):
    fake_openai.script(NANO, Reply("hi", prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=250_000))

    completion = await make_router().complete(CTX, REQUEST)

    assert (completion.served_model, completion.requested_model, completion.fallback_note) == (NANO, NANO, None)
    # 600k × $0.10 + 400k × $0.025 + 250k × $0.40 per million
    assert completion.cost_usd == Decimal("0.17")
    # the same tokens on gpt-4o: 600k × $2.50 + 400k × $1.25 + 250k × $10.00 per million
    assert completion.baseline_cost_usd == Decimal("4.50")
    nano = Catalog.load().get(NANO).energy
    assert completion.energy_wh == pytest.approx(
        nano.fixed_wh + nano.per_input_token_wh * 1_000_000 + nano.per_output_token_wh * 250_000
    )
    assert completion.energy_source == "Jegham et al. 2025"  # the short citation; the full source is in the catalog
    assert "2505.09598" in nano.source
    [entry] = ledger.entries
    assert (entry.cost_usd, entry.baseline_cost_usd, entry.energy_wh) == (
        Decimal("0.17"),
        Decimal("4.50"),
        completion.energy_wh,
    )
    assert (entry.prompt_tokens, entry.cached_tokens, entry.completion_tokens) == (1_000_000, 400_000, 250_000)
    assert (entry.outcome, entry.attempt, entry.served_model) == ("ok", 1, NANO)


async def test_cost_on_a_fallback_is_priced_at_the_fallback(make_router, fake_openai):
    fake_openai.script(NANO, Fail.insufficient_quota())
    fake_openai.script(MINI, Reply("hi", prompt_tokens=2_000_000, cached_tokens=1_000_000, completion_tokens=100_000))

    completion = await make_router().complete(CTX, REQUEST)

    # 1M × $0.15 + 1M × $0.075 + 100k × $0.60 per million
    assert (completion.served_model, completion.cost_usd) == (MINI, Decimal("0.285"))


async def test_a_model_without_a_price_costs_unknown_never_zero(make_router, fake_openai, ledger):
    completion = await make_router(chain=("local-llm",)).complete(CTX, REQUEST)

    assert completion.text == "[local-llm] hello there"
    assert (completion.cost_usd, completion.energy_wh, completion.energy_source) == (None, None, None)
    assert completion.baseline_cost_usd is not None
    assert ledger.entries[0].cost_usd is None


# --- 429 rate_limit_exceeded ------------------------------------------------------------------


async def test_one_throttle_then_success_stays_on_the_primary(make_router, fake_openai, ledger, clock):
    fake_openai.script(NANO, Fail.rate_limited(retry_after=0.05), Reply("fine"))

    completion = await make_router().complete(CTX, REQUEST)

    assert (completion.served_model, completion.text, completion.fallback_note) == (NANO, "fine", None)
    assert clock.slept == [timedelta(milliseconds=50)]
    assert outcomes(ledger) == [(NANO, "error", "rate_limit_exceeded", 1), (NANO, "ok", None, 2)]
    assert fake_openai.calls_for(MINI) == []


async def test_a_throttle_that_persists_fails_over_after_one_retry(make_router, fake_openai, ledger):
    fake_openai.set_behaviour(NANO, Fail.rate_limited(retry_after=0.05))

    completion = await make_router().complete(CTX, REQUEST)

    assert completion.served_model == MINI
    assert completion.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano was rate limited"
    assert [o[:3] for o in outcomes(ledger)] == [
        (NANO, "error", "rate_limit_exceeded"),
        (NANO, "error", "rate_limit_exceeded"),
        (MINI, "ok", None),
    ]
    assert [e.attempt for e in ledger.entries] == [1, 2, 3]


async def test_a_throttle_longer_than_the_bound_fails_over_at_once_and_rests_the_model(make_router, fake_openai, clock):
    fake_openai.set_behaviour(NANO, Fail.rate_limited(retry_after=30))
    router = make_router()

    first = await router.complete(CTX, REQUEST)
    second = await router.complete(CTX, REQUEST)
    clock.advance(seconds=31)
    fake_openai.set_behaviour(NANO, None)
    third = await router.complete(CTX, REQUEST)

    assert (first.served_model, second.served_model, third.served_model) == (MINI, MINI, NANO)
    assert clock.slept == []
    assert len(fake_openai.calls_for(NANO)) == 2  # the first request and the probe after 30 s


async def test_retry_after_ms_is_honoured_over_retry_after(make_router, fake_openai, clock):
    throttle = Fail(
        429, "rate_limit_exceeded", "Rate limit reached", headers={"retry-after-ms": "120", "retry-after": "1"}
    )
    fake_openai.script(NANO, throttle, Reply("ok"))

    completion = await make_router().complete(CTX, REQUEST)

    assert completion.served_model == NANO
    assert clock.slept == [timedelta(milliseconds=120)]


async def test_the_only_retries_are_the_routers(make_router, fake_openai, ledger):
    # One retry on the primary, then the fallback: three requests in all, each one a ledger row.
    fake_openai.set_behaviour(NANO, Fail.server_error())

    await make_router().complete(CTX, REQUEST)

    assert [r.json["model"] for r in fake_openai.requests] == [NANO, NANO, MINI]
    assert len(ledger.entries) == len(fake_openai.requests)


async def test_a_throttle_without_retry_after_waits_the_default(make_router, fake_openai, clock):
    fake_openai.script(NANO, Fail(429, "rate_limit_exceeded", "Rate limit reached"), Reply("ok"))

    completion = await make_router().complete(CTX, REQUEST)

    assert completion.served_model == NANO
    assert clock.slept == [timedelta(seconds=1)]


# --- 429 insufficient_quota -------------------------------------------------------------------


async def test_out_of_credit_fails_over_at_once_and_tells_the_admins(make_router, fake_openai, alerts, clock):
    fake_openai.set_behaviour(NANO, Fail.insufficient_quota())
    router = make_router()

    first = await router.complete(CTX, REQUEST)
    second = await router.complete(CTX, REQUEST)

    assert (first.served_model, second.served_model) == (MINI, MINI)
    assert first.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano is out of credit"
    assert second.fallback_note == first.fallback_note
    assert len(fake_openai.calls_for(NANO)) == 1  # known to be failing: not paid for twice
    assert clock.slept == []
    [(team, text, key)] = alerts.sent
    assert team == "T0001" and key == "gpt-4.1-nano:insufficient_quota"
    assert "out of credit" in text and "billing" in text and "hello" not in text


async def test_every_model_out_of_credit_says_so(make_router, fake_openai):
    fake_openai.set_behaviour(NANO, Fail.insufficient_quota())
    fake_openai.set_behaviour(MINI, Fail.insufficient_quota())

    with pytest.raises(CompletionFailed) as failed:
        await make_router().complete(CTX, REQUEST)

    assert "out of credit" in str(failed.value) and "Nothing was charged" in str(failed.value)


# --- 404 model_not_found / 400 invalid model --------------------------------------------------


@pytest.mark.parametrize("failure", [Fail.model_not_found(NANO), Fail.invalid_model(NANO)], ids=["404", "400"])
async def test_a_missing_model_is_called_once_then_skipped_and_marked(
    make_router, fake_openai, status_store, alerts, clock, failure
):
    fake_openai.set_behaviour(NANO, failure)
    router = make_router()

    first = await router.complete(CTX, REQUEST)
    second = await router.complete(CTX, REQUEST)

    assert (first.served_model, second.served_model) == (MINI, MINI)
    assert first.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano is unavailable (retired, or no access)"
    assert len(fake_openai.calls_for(NANO)) == 1
    mark = status_store.marks[NANO]
    assert (mark.marked_at, mark.retry_at) == (clock.now, clock.now + timedelta(hours=24))
    assert alerts.keys == ["gpt-4.1-nano:model_not_found"]
    assert "FRUGAL_MODELS" in alerts.sent[0][1]


async def test_a_missing_model_is_probed_after_its_long_cool_down_and_cleared_when_back(
    make_router, fake_openai, status_store, clock
):
    fake_openai.set_behaviour(NANO, Fail.model_not_found(NANO))
    router = make_router()
    await router.complete(CTX, REQUEST)

    clock.advance(hours=23)
    assert (await router.complete(CTX, REQUEST)).served_model == MINI
    clock.advance(hours=1, seconds=1)
    fake_openai.set_behaviour(NANO, None)
    probed = await router.complete(CTX, REQUEST)

    assert probed.served_model == NANO and probed.fallback_note is None
    assert len(fake_openai.calls_for(NANO)) == 2
    assert status_store.marks == {}


async def test_a_mark_made_by_another_replica_is_honoured_after_a_restart(
    make_router, fake_openai, status_store, clock
):
    fake_openai.set_behaviour(NANO, Fail.model_not_found(NANO))
    await make_router().complete(CTX, REQUEST)

    restarted = make_router()
    completion = await restarted.complete(CTX, REQUEST)

    assert completion.served_model == MINI
    assert (
        completion.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano is unavailable (retired, or no access)"
    )
    assert len(fake_openai.calls_for(NANO)) == 1


async def test_marks_of_other_replicas_are_reread_after_a_minute(make_router, fake_openai, status_store, clock):
    replica_a, replica_b = make_router(), make_router()
    await replica_b.complete(CTX, REQUEST)  # b has read the (empty) marks
    fake_openai.set_behaviour(NANO, Fail.model_not_found(NANO))
    await replica_a.complete(CTX, REQUEST)  # a marks nano
    fake_openai.set_behaviour(NANO, None)

    clock.advance(seconds=61)
    completion = await replica_b.complete(CTX, REQUEST)

    assert completion.served_model == MINI
    assert len(fake_openai.calls_for(NANO)) == 2  # b's first request and a's; none after the mark


# --- 400 context_length_exceeded ---------------------------------------------------------------


async def test_text_too_long_goes_to_a_model_with_a_larger_window(make_router, fake_openai, ledger):
    fake_openai.set_behaviour(MINI, Fail.context_length())

    completion = await make_router(chain=(MINI, "gpt-4o", NANO)).complete(CTX, REQUEST)

    assert completion.served_model == NANO
    assert fake_openai.calls_for("gpt-4o") == []  # the same 128k window: no point
    assert completion.fallback_note == "gpt-4.1-nano answered because gpt-4o-mini cannot fit the text"
    assert [o[:3] for o in outcomes(ledger)] == [(MINI, "error", "context_length_exceeded"), (NANO, "ok", None)]


async def test_text_too_long_for_every_model_tells_the_user(make_router, fake_openai, ledger):
    fake_openai.set_behaviour(NANO, Fail.context_length())

    with pytest.raises(CompletionFailed) as failed:
        await make_router(chain=(NANO, MINI)).complete(CTX, REQUEST)

    assert (
        str(failed.value)
        == "The text is too long for every model Frugal may use. Please shorten it; nothing was charged."
    )
    assert fake_openai.calls_for(MINI) == []


async def test_a_context_failure_does_not_cool_the_model_down(make_router, fake_openai):
    fake_openai.script(MINI, *[Fail.context_length()] * 3)
    router = make_router(chain=(MINI, NANO))
    for _ in range(3):
        assert (await router.complete(CTX, REQUEST)).served_model == NANO

    assert (await router.complete(CTX, REQUEST)).served_model == MINI


# --- 5xx, timeouts, connection errors ---------------------------------------------------------


async def test_a_server_error_is_retried_once_after_a_short_backoff(make_router, fake_openai, clock):
    fake_openai.script(NANO, Fail.server_error(), Reply("ok"))

    completion = await make_router().complete(CTX, REQUEST)

    assert (completion.served_model, completion.fallback_note) == (NANO, None)
    assert clock.slept == [timedelta(milliseconds=250)]


async def test_a_lasting_server_error_fails_over(make_router, fake_openai, ledger):
    fake_openai.set_behaviour(NANO, Fail.server_error())

    completion = await make_router().complete(CTX, REQUEST)

    assert completion.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano had a server error"
    assert [o[:3] for o in outcomes(ledger)] == [
        (NANO, "error", "server_error"),
        (NANO, "error", "server_error"),
        (MINI, "ok", None),
    ]
    assert all(e.cost_usd == 0 for e in ledger.entries if e.outcome == "error")


async def test_a_timeout_fails_over_without_waiting_twice(make_router, fake_openai, ledger):
    fake_openai.set_behaviour(NANO, Hang(2.0))
    model = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=0.3)
    try:
        completion = await make_router(model=model).complete(CTX, REQUEST)
    finally:
        await model.close()

    assert completion.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano timed out"
    assert [o[:3] for o in outcomes(ledger)] == [(NANO, "error", "timeout"), (MINI, "ok", None)]


async def test_a_dropped_connection_fails_over(make_router, fake_openai, ledger, clock):
    fake_openai.set_behaviour(NANO, Drop())

    completion = await make_router().complete(CTX, REQUEST)

    # openai's aiohttp transport reports a dropped connection as a connect timeout (fail over at once);
    # httpx's as a connection error (one retry after a short backoff). Both end on the next model.
    *failed, answered = outcomes(ledger)
    assert answered[:2] == (MINI, "ok")
    assert {(model, outcome) for model, outcome, _, _ in failed} == {(NANO, "error")}
    assert {code for _, _, code, _ in failed} <= {"connection_error", "timeout"}
    assert completion.fallback_note in (
        "gpt-4o-mini answered because gpt-4.1-nano could not be reached",
        "gpt-4o-mini answered because gpt-4.1-nano timed out",
    )


async def test_a_model_that_keeps_failing_is_skipped_for_a_cool_down_then_probed(make_router, fake_openai, clock):
    fake_openai.set_behaviour(NANO, Fail.server_error())
    router = make_router()

    await router.complete(CTX, REQUEST)  # two failures
    await router.complete(CTX, REQUEST)  # the third: cooled down, so no retry
    assert len(fake_openai.calls_for(NANO)) == 3
    skipped = await router.complete(CTX, REQUEST)
    assert len(fake_openai.calls_for(NANO)) == 3
    assert skipped.fallback_note == "gpt-4o-mini answered because gpt-4.1-nano had a server error"

    clock.advance(seconds=31)
    await router.complete(CTX, REQUEST)  # one probe, fails: cooled down twice as long
    assert len(fake_openai.calls_for(NANO)) == 4
    clock.advance(seconds=31)
    await router.complete(CTX, REQUEST)
    assert len(fake_openai.calls_for(NANO)) == 4

    clock.advance(seconds=30)
    fake_openai.set_behaviour(NANO, None)
    recovered = await router.complete(CTX, REQUEST)
    assert (recovered.served_model, len(fake_openai.calls_for(NANO))) == (NANO, 5)
    assert [h.state for h in await router.model_health()] == ["healthy", "healthy"]


# --- every model down ------------------------------------------------------------------------


async def test_all_models_down_gives_a_plain_message_and_charges_nothing(make_router, fake_openai, ledger, alerts):
    fake_openai.set_behaviour(NANO, Fail.server_error())
    fake_openai.set_behaviour(MINI, Fail.server_error())

    with pytest.raises(CompletionFailed) as failed:
        await make_router().complete(CTX, REQUEST)

    message = str(failed.value)
    assert message.startswith(
        "No model could answer just now (gpt-4.1-nano had a server error; gpt-4o-mini had a server error)."
    )
    assert "Nothing was charged" in message
    assert len(ledger.entries) == 4
    assert all(e.outcome == "error" and e.cost_usd == 0 and e.baseline_cost_usd == 0 for e in ledger.entries)
    assert alerts.keys == ["all-models-failed"]


async def test_with_every_model_resting_nothing_is_called_and_the_user_is_told_when(make_router, fake_openai, clock):
    fake_openai.set_behaviour(NANO, Fail.insufficient_quota())
    fake_openai.set_behaviour(MINI, Fail.server_error())
    router = make_router()
    for _ in range(2):
        with pytest.raises(CompletionFailed):
            await router.complete(CTX, REQUEST)
    calls = len(fake_openai.requests)

    with pytest.raises(CompletionFailed) as failed:
        await router.complete(CTX, REQUEST)

    assert len(fake_openai.requests) == calls
    assert "try again in about 30 seconds" in str(failed.value)


# --- 401 / 403 --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_stops_without_failing_over(make_router, fake_openai, alerts, status):
    fake_openai.set_behaviour(NANO, Fail(status, "invalid_api_key", "Incorrect API key provided: sk-****"))

    with pytest.raises(CompletionFailed) as failed:
        await make_router().complete(CTX, REQUEST)

    assert fake_openai.calls_for(MINI) == []
    assert "refused the API key" in str(failed.value) and "Nothing was charged" in str(failed.value)
    [(_, text, key)] = alerts.sent
    assert key == "gpt-4.1-nano:auth_error" and "OPENAI_API_KEY" in text and "sk-" not in text


# --- other 400s ------------------------------------------------------------------------------


async def test_another_bad_request_fails_over_without_cooling_the_model(make_router, fake_openai):
    fake_openai.script(NANO, *[Fail(400, "invalid_value", "Invalid value for 'messages'")] * 3)
    router = make_router()
    for _ in range(3):
        assert (await router.complete(CTX, REQUEST)).served_model == MINI

    assert (await router.complete(CTX, REQUEST)).served_model == NANO


# --- the chain -------------------------------------------------------------------------------


async def test_allowed_models_limit_the_chain_in_chain_order(make_router, fake_openai):
    router = make_router(chain=(NANO, "gpt-4.1-mini", MINI))
    request = CompletionRequest(messages=REQUEST.messages, max_tokens=10, allowed_models=(MINI, "4.1-mini"))

    completion = await router.complete(CTX, request)

    assert completion.served_model == "gpt-4.1-mini"
    assert completion.fallback_note == "gpt-4.1-mini answered because gpt-4.1-nano is not allowed for this request"
    assert [r.json["model"] for r in fake_openai.requests] == ["gpt-4.1-mini"]


async def test_no_allowed_model_calls_nothing(make_router, fake_openai, ledger):
    request = CompletionRequest(messages=REQUEST.messages, max_tokens=10, allowed_models=("gpt-4o",))

    with pytest.raises(CompletionFailed) as failed:
        await make_router().complete(CTX, request)

    assert "nothing was called or charged" in str(failed.value)
    assert fake_openai.requests == [] and ledger.entries == []


async def test_structured_output_and_logprobs_only_go_to_models_that_support_them(make_router, fake_openai, tmp_path):
    override = tmp_path / "catalog.json"
    override.write_text(json.dumps({"models": [{"id": "local-llm", "context_window": 8192}]}))
    catalog = Catalog.load(override)
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": ["a", "b"]}}}
    request = CompletionRequest(messages=REQUEST.messages, max_tokens=10_000_000, json_schema=schema, logprobs=True)
    fake_openai.set_behaviour(NANO, Fail.server_error())

    await make_router(chain=(NANO, "local-llm"), catalog=catalog).complete(CTX, request)

    nano, _, local = fake_openai.requests
    assert nano.json["response_format"]["json_schema"]["schema"] == schema and nano.json["logprobs"] is True
    assert nano.json["max_tokens"] == 32_768  # capped at the model's output limit
    assert "response_format" not in local.json and "logprobs" not in local.json


async def test_model_health_lists_the_chain(make_router, fake_openai, clock):
    fake_openai.set_behaviour(NANO, Fail.model_not_found(NANO))
    router = make_router()
    await router.complete(CTX, REQUEST)

    nano, mini = await router.model_health()

    assert (nano.model, nano.state, nano.until) == (NANO, "unavailable", clock.now + timedelta(hours=24))
    assert nano.reason == "is unavailable (retired, or no access)"
    assert (mini.model, mini.state, mini.reason) == (MINI, "healthy", None)
