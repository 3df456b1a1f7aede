"""The openai adapter against the fake server: one retry layer, failures classified, usage read exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from bot.catalog import TokenUsage
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.chat import ChatRequest, ErrorKind, ModelCallError
from bot.infra.openai_chat import _env_proxy
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
        (Fail(400, "unsupported_parameter", "Unsupported parameter"), ErrorKind.BAD_REQUEST, "unsupported_parameter"),
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
    fake_openai.set_behaviour("gpt-4.1-nano", Fail(429, "rate_limit_exceeded", "slow down", headers={"retry-after": when}))

    assert 25 <= (await _fail(model)).retry_after <= 31


async def test_a_timeout_and_a_dropped_connection(fake_openai):
    chat = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=0.2)
    try:
        fake_openai.script("gpt-4.1-nano", Hang(2.0), Drop())
        assert (await _fail(chat)).kind is ErrorKind.TIMEOUT
        assert (await _fail(chat)).kind is ErrorKind.CONNECTION
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
            "type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
        "logprobs": True,
    }


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
    ids=["html-200", "no-choices", "json-list", "choices-object", "choices-number", "html-502", "text-429", "odd-error"],
)
async def test_answers_that_are_not_the_api_s_shape_are_classified_not_raised(model, fake_openai, step, kind, status, code):
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


def test_the_proxy_comes_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert _env_proxy("https://api.openai.com/v1/chat/completions") == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    assert _env_proxy("https://api.openai.com/v1/chat/completions") is None


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
