"""The openai adapter against the fake server: one retry layer, failures classified, usage read exactly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from bot.catalog import CallShape, TokenUsage
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.chat import ChatRequest, ErrorKind, ModelCallError
from tests.fakes.openai_server import Drop, Fail, Hang, Raw, Reply

REQUEST = ChatRequest(model="gpt-4.1-nano", messages=({"role": "user", "content": "hi"},), max_tokens=20)


@pytest.fixture
async def model(fake_openai) -> AsyncIterator[OpenAIChatModel]:
    chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    yield chat
    await chat.close()


async def _fail(model: OpenAIChatModel) -> ModelCallError:
    with pytest.raises(ModelCallError) as failed:
        await model.complete(REQUEST)
    return failed.value


@pytest.mark.parametrize(
    "failure",
    [Fail.server_error(), Fail.rate_limited(0.01), Fail(408, None, "timeout"), Fail(409, None, "conflict")],
    ids=["500", "429", "408", "409"],
)
async def test_the_client_never_retries_on_its_own(model, fake_openai, failure):
    # The openai library would retry these twice by default; the router is the only retry layer.
    fake_openai.set_behaviour("gpt-4.1-nano", failure)

    await _fail(model)

    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    ("failure", "kind", "code"),
    [
        (Fail.rate_limited(0.5), ErrorKind.RATE_LIMITED, "rate_limit_exceeded"),
        (Fail.insufficient_quota(), ErrorKind.NO_CREDIT, "insufficient_quota"),
        (Fail.model_not_found("gpt-4.1-nano"), ErrorKind.MODEL_NOT_FOUND, "model_not_found"),
        (Fail.invalid_model("gpt-4.1-nano"), ErrorKind.MODEL_NOT_FOUND, "invalid_model"),
        (Fail(400, None, "invalid model ID"), ErrorKind.MODEL_NOT_FOUND, None),
        (Fail.context_length(), ErrorKind.CONTEXT_TOO_LONG, "context_length_exceeded"),
        (Fail.server_error(), ErrorKind.SERVER_ERROR, None),
        (Fail(503, None, "overloaded"), ErrorKind.SERVER_ERROR, None),
        (Fail(401, "invalid_api_key", "Incorrect API key"), ErrorKind.AUTH, "invalid_api_key"),
        (Fail(403, None, "Forbidden"), ErrorKind.AUTH, None),
        (
            Fail(400, "unsupported_parameter", "Unsupported parameter"),
            ErrorKind.UNSUPPORTED_PARAMETER,
            "unsupported_parameter",
        ),
        (Fail(400, "unsupported_value", "Unsupported value"), ErrorKind.UNSUPPORTED_PARAMETER, "unsupported_value"),
        (Fail(400, "invalid_value", "Invalid value"), ErrorKind.BAD_REQUEST, "invalid_value"),
        # One project lacks one model: that model is unavailable, the key is fine.
        (
            Fail(403, "model_not_found", "Project `proj_abc` does not have access to model `gpt-4.1-nano`"),
            ErrorKind.MODEL_NOT_FOUND,
            "model_not_found",
        ),
        # A 404 that names no model is a wrong URL, not a missing model.
        (Fail(404, None, "Not Found"), ErrorKind.ENDPOINT_NOT_FOUND, None),
        (Fail(404, None, 'model "gpt-4.1-nano" not found, try pulling it first'), ErrorKind.MODEL_NOT_FOUND, None),
    ],
)
async def test_each_row_of_the_error_table_is_classified(model, fake_openai, failure, kind, code):
    fake_openai.set_behaviour("gpt-4.1-nano", failure)

    err = await _fail(model)

    assert (err.kind, err.status, err.code, err.model) == (kind, failure.status, code, "gpt-4.1-nano")


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),  # the precise header wins
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
async def test_retry_after_headers_are_read(model, fake_openai, headers, seconds):
    fake_openai.set_behaviour("gpt-4.1-nano", Fail(429, "rate_limit_exceeded", "slow down", headers=headers))

    assert (await _fail(model)).retry_after == seconds


async def test_retry_after_as_an_http_date(model, fake_openai):
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    fake_openai.set_behaviour(
        "gpt-4.1-nano", Fail(429, "rate_limit_exceeded", "slow down", headers={"retry-after": when})
    )

    assert 25 <= (await _fail(model)).retry_after <= 31


async def test_a_timeout_and_a_dropped_connection(fake_openai):
    chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=0.2)
    try:
        fake_openai.script("gpt-4.1-nano", Hang(2.0), Drop())
        assert (await _fail(chat)).kind is ErrorKind.TIMEOUT
        # openai's aiohttp transport reports a dropped connection as a connect timeout
        # (APITimeoutError); either way the router fails over.
        assert (await _fail(chat)).kind in (ErrorKind.TIMEOUT, ErrorKind.CONNECTION)
    finally:
        await chat.close()
    assert len(fake_openai.requests) == 2


async def test_usage_with_cached_tokens_and_logprobs(model, fake_openai):
    fake_openai.script(
        "gpt-4.1-nano",
        Reply("ok", prompt_tokens=1200, cached_tokens=1024, completion_tokens=3, logprobs=[("ok", -0.01)]),
    )

    result = await model.complete(ChatRequest(**{**REQUEST.__dict__, "logprobs": True}))

    assert result.usage == TokenUsage(prompt_tokens=1200, cached_tokens=1024, completion_tokens=3)
    assert (result.text, result.served_model) == ("ok", "gpt-4.1-nano")
    assert [(t.token, t.logprob) for t in result.logprobs] == [("ok", -0.01)]


async def test_a_cached_count_above_the_prompt_is_capped(model, fake_openai):
    fake_openai.script("gpt-4.1-nano", Reply("ok", prompt_tokens=10, cached_tokens=50, completion_tokens=1))

    result = await model.complete(REQUEST)

    assert result.usage == TokenUsage(prompt_tokens=10, cached_tokens=10, completion_tokens=1)


async def test_the_model_list_with_shutdown_dates(model, fake_openai):
    fake_openai.models = {"gpt-4.1-nano": "2026-12-01", "gpt-4o": None}

    listed = {m.id: m.shutdown_date for m in await model.list_models()}

    assert listed == {"gpt-4.1-nano": date(2026, 12, 1), "gpt-4o": None}


async def test_the_request_is_the_chat_completions_api_s_own(model, fake_openai):
    fake_openai.script("gpt-4.1-nano", Reply("ok"))

    await model.complete(ChatRequest(**{**REQUEST.__dict__, "json_schema": {"type": "object"}, "logprobs": True}))

    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.json == {
        "model": "gpt-4.1-nano",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 20,
        "temperature": REQUEST.temperature,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
        "logprobs": True,
    }


async def test_a_reasoning_model_is_called_in_its_own_shape(model, fake_openai):
    shape = CallShape(token_parameter="max_completion_tokens", temperature=False, reasoning_effort="none")
    fake_openai.script("gpt-6-luna", Reply("ok"))

    await model.complete(
        ChatRequest(model="gpt-6-luna", messages=REQUEST.messages, max_tokens=300, shape=shape, service_tier="flex")
    )

    [sent] = fake_openai.requests
    assert sent.json == {
        "model": "gpt-6-luna",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 300,
        "reasoning_effort": "none",
        "service_tier": "flex",
    }


def _answer(message: dict, *, finish: str = "stop", usage: dict | None = None, **extra) -> Raw:
    """A 200 in the API's documented ChatCompletion shape."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-6-luna",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, "logprobs": None}
        ],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        **extra,
    }
    return Raw(200, json.dumps(body), "application/json")


async def test_reasoning_tokens_cache_writes_and_the_tier_are_read(model, fake_openai):
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 90,
        "total_tokens": 2090,
        "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 512},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    fake_openai.script("gpt-4.1-nano", _answer({"content": "ok"}, usage=usage, service_tier="flex"))

    result = await model.complete(REQUEST)

    assert result.usage == TokenUsage(
        prompt_tokens=2000, cached_tokens=1024, cache_write_tokens=512, completion_tokens=90, reasoning_tokens=64
    )
    assert (result.service_tier, result.finish_reason, result.refusal) == ("flex", "stop", None)


async def test_a_refusal_and_a_cut_answer_are_reported(model, fake_openai):
    fake_openai.script(
        "gpt-4.1-nano",
        _answer({"content": None, "refusal": "I can't help with that."}),
        _answer({"content": "half an ans"}, finish="length"),
        _answer({"content": ""}, finish="content_filter"),
    )

    refused, cut, filtered = [await model.complete(REQUEST) for _ in range(3)]

    assert (refused.text, refused.refusal) == ("", "I can't help with that.")
    assert (cut.text, cut.finish_reason) == ("half an ans", "length")
    assert filtered.finish_reason == "content_filter"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # A negative count is no count: the prompt is estimated from its text (2 characters: 1 token).
        ({"prompt_tokens": -5, "completion_tokens": -1}, TokenUsage(prompt_tokens=1, completion_tokens=0)),
        # Parts larger than their whole are cut to it.
        (
            {"prompt_tokens": 10, "completion_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 9}},
            TokenUsage(prompt_tokens=10, completion_tokens=4, reasoning_tokens=4),
        ),
    ],
)
async def test_usage_numbers_are_bounded(model, fake_openai, usage, expected):
    fake_openai.script("gpt-4.1-nano", _answer({"content": "ok"}, usage=usage))

    assert (await model.complete(REQUEST)).usage == expected


async def test_an_absurd_usage_report_is_refused_as_invalid(model, fake_openai):
    fake_openai.script(
        "gpt-4.1-nano", _answer({"content": "ok"}, usage={"prompt_tokens": 10**15, "completion_tokens": 1})
    )

    err = await _fail(model)

    assert (err.kind, err.code) == (ErrorKind.SERVER_ERROR, "invalid_usage")


async def test_a_failure_logs_the_endpoint_s_request_id(model, fake_openai, caplog):
    fake_openai.script("gpt-4.1-nano", Fail(500, None, "boom", headers={"x-request-id": "req_abc123"}))

    err = await _fail(model)

    assert err.request_id == "req_abc123"
    assert "req_abc123" in caplog.text


async def test_custom_headers_from_the_environment_reach_chat_calls(fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Gateway-Key: gw-1\nX-Team: frugal")
    chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    try:
        await chat.complete(REQUEST)
    finally:
        await chat.close()

    [sent] = fake_openai.requests
    assert (sent.headers["X-Gateway-Key"], sent.headers["X-Team"]) == ("gw-1", "frugal")


@pytest.mark.parametrize(
    ("step", "kind", "status", "code"),
    [
        (Raw(200, "<html>gateway</html>"), ErrorKind.SERVER_ERROR, None, "invalid_response"),
        (Raw(200, '{"choices": []}', "application/json"), ErrorKind.SERVER_ERROR, None, "empty_response"),
        (Raw(200, '["not", "an", "object"]', "application/json"), ErrorKind.SERVER_ERROR, None, "invalid_response"),
        (Raw(200, '{"choices": {"0": {}}}', "application/json"), ErrorKind.SERVER_ERROR, None, "invalid_response"),
        (Raw(200, '{"choices": 5}', "application/json"), ErrorKind.SERVER_ERROR, None, "invalid_response"),
        (Raw(502, "<html>Bad Gateway</html>"), ErrorKind.SERVER_ERROR, 502, None),
        (Raw(429, "slow down"), ErrorKind.RATE_LIMITED, 429, None),
        (Raw(400, '{"error": "a string, not an object"}', "application/json"), ErrorKind.BAD_REQUEST, 400, None),
    ],
    ids=[
        "html-200",
        "no-choices",
        "json-list",
        "choices-object",
        "choices-number",
        "html-502",
        "text-429",
        "odd-error",
    ],
)
async def test_answers_that_are_not_the_api_s_shape_are_classified_not_raised(
    model, fake_openai, step, kind, status, code
):
    fake_openai.script("gpt-4.1-nano", step)

    err = await _fail(model)

    assert (err.kind, err.status, err.code) == (kind, status, code)


async def test_usage_and_logprobs_of_odd_shapes_are_read_safely(model, fake_openai):
    body = (
        '{"model": "gpt-4.1-nano", "choices": [{"message": {"content": "ok"}, "logprobs": {"content": '
        '[{"token": "ok", "logprob": -0.5}, {"token": 3}, "junk"]}}], '
        '"usage": {"prompt_tokens": 7, "completion_tokens": "two", "prompt_tokens_details": null}}'
    )
    fake_openai.script("gpt-4.1-nano", Raw(200, body, "application/json"))

    result = await model.complete(REQUEST)

    assert result.usage == TokenUsage(prompt_tokens=7, cached_tokens=0, completion_tokens=0)
    assert [(t.token, t.logprob) for t in result.logprobs] == [("ok", -0.5)]


async def test_content_parts_are_joined_and_an_odd_served_model_is_not_trusted(model, fake_openai):
    body = (
        '{"model": "' + "x" * 300 + '", "choices": [{"message": {"content": '
        '[{"type": "text", "text": "Hello, "}, {"type": "text", "text": "team."}, {"type": "image"}]}}]}'
    )
    fake_openai.script("gpt-4.1-nano", Raw(200, body, "application/json"))

    result = await model.complete(REQUEST)

    assert (result.text, result.served_model) == ("Hello, team.", "gpt-4.1-nano")


async def test_the_organization_and_project_go_with_each_call(fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-frugal")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-frugal")
    chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    try:
        await chat.complete(REQUEST)
    finally:
        await chat.close()

    [sent] = fake_openai.requests
    assert (sent.headers["OpenAI-Organization"], sent.headers["OpenAI-Project"]) == ("org-frugal", "proj-frugal")


async def test_a_call_after_close_fails_as_a_connection_error(fake_openai):
    chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    await chat.close()

    assert (await _fail(chat)).kind is ErrorKind.CONNECTION
    assert fake_openai.requests == []
