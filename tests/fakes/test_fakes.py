"""Prove the fakes behave like the real services for the real openai, slack_sdk and slack_bolt clients."""

from __future__ import annotations

import asyncio
import enum
import json
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime

import openai
import pydantic
import pytest
import pytest_asyncio
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from .openai_server import DEFAULT_MODELS, Drop, Fail, FakeOpenAI, Hang, Reply
from .slack_server import FakeSlack
from .slack_signing import (
    app_mention_event,
    block_actions,
    event_callback,
    message_shortcut,
    sign_request,
    slash_command,
    url_verification,
)

SECRET = "test-signing-secret"
USER_MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def oai():
    with FakeOpenAI() as fake:
        yield fake


@pytest_asyncio.fixture
async def client(oai):
    async with openai.AsyncOpenAI(base_url=oai.api_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest_asyncio.fixture
async def web(slack):
    c = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
    yield c
    if c.session is not None:
        await c.session.close()


# --- FakeOpenAI -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_default_reply_echoes_last_user_message_and_records_request(oai, client):
    res = await client.chat.completions.create(model="gpt-4.1-nano", messages=USER_MSG)
    assert res.choices[0].message.content == "[gpt-4.1-nano] hello there"
    assert res.model == "gpt-4.1-nano" and res.choices[0].finish_reason == "stop"
    assert (res.usage.prompt_tokens, res.usage.completion_tokens, res.usage.total_tokens) == (2, 3, 5)
    [req] = oai.calls_for("gpt-4.1-nano")
    assert req.path == "/v1/chat/completions" and req.json["messages"] == USER_MSG
    assert req.headers["authorization"] == "Bearer sk-test"


@pytest.mark.asyncio
async def test_scripted_reply_usage_with_cached_tokens_then_default(oai, client):
    oai.script("gpt-4o", Reply("scripted", prompt_tokens=1000, completion_tokens=7, cached_tokens=800))
    first = await client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    second = await client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert first.choices[0].message.content == "scripted"
    assert first.usage.total_tokens == 1007 and first.usage.prompt_tokens_details.cached_tokens == 800
    assert second.choices[0].message.content == "[gpt-4o] hello there"


@pytest.mark.asyncio
async def test_logprobs_only_when_requested(oai, client):
    oai.script("m", *[Reply("Yes", logprobs=[("Yes", -0.01)])] * 2)
    asked = await client.chat.completions.create(model="m", messages=USER_MSG, logprobs=True)
    not_asked = await client.chat.completions.create(model="m", messages=USER_MSG)
    [token] = asked.choices[0].logprobs.content
    assert (token.token, token.logprob, token.bytes, token.top_logprobs) == ("Yes", -0.01, [89, 101, 115], [])
    assert not_asked.choices[0].logprobs is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fail, exc, status, code",
    [
        (Fail.rate_limited(0.05), openai.RateLimitError, 429, "rate_limit_exceeded"),
        (Fail.insufficient_quota(), openai.RateLimitError, 429, "insufficient_quota"),
        (Fail.model_not_found("gpt-9"), openai.NotFoundError, 404, "model_not_found"),
        (Fail.server_error(), openai.InternalServerError, 500, None),
        (Fail.context_length(), openai.BadRequestError, 400, "context_length_exceeded"),
        (Fail.invalid_model("gpt-9"), openai.BadRequestError, 400, "invalid_model"),
    ],
)
async def test_fail_steps_raise_matching_openai_errors(oai, client, fail, exc, status, code):
    oai.script("m", fail)
    with pytest.raises(exc) as info:
        await client.chat.completions.create(model="m", messages=USER_MSG)
    assert info.value.status_code == status and info.value.code == code
    assert info.value.body["message"] == fail.message
    if code == "rate_limit_exceeded":
        assert info.value.response.headers["retry-after"] == "0.05"
        assert info.value.response.headers["retry-after-ms"] == "50"


@pytest.mark.asyncio
async def test_model_not_found_message_names_the_model(oai, client):
    oai.script("gpt-9", Fail.model_not_found("gpt-9"))
    with pytest.raises(openai.NotFoundError, match="The model `gpt-9` does not exist"):
        await client.chat.completions.create(model="gpt-9", messages=USER_MSG)


@pytest.mark.asyncio
async def test_drop_is_a_connection_error_and_hang_a_timeout(oai, client):
    oai.script("m", Drop(), Hang(5))
    with pytest.raises(openai.APIConnectionError) as dropped:
        await client.chat.completions.create(model="m", messages=USER_MSG)
    assert not isinstance(dropped.value, openai.APITimeoutError)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=USER_MSG, timeout=0.2)


@pytest.mark.asyncio
async def test_behaviour_applies_when_script_is_empty_and_can_be_callable(oai, client):
    oai.set_behaviour("down", Fail.server_error())
    oai.set_behaviour("upper", lambda req: Reply(req.json["messages"][-1]["content"].upper()))
    oai.script("down", Reply("one good answer"))
    assert (await client.chat.completions.create(model="down", messages=USER_MSG)).choices[0].message.content
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="down", messages=USER_MSG)
    upper = await client.chat.completions.create(model="upper", messages=USER_MSG)
    assert upper.choices[0].message.content == "HELLO THERE"
    oai.reset()
    assert oai.requests == []
    ok = await client.chat.completions.create(model="down", messages=USER_MSG)
    assert ok.choices[0].message.content == "[down] hello there"


class Tone(enum.Enum):
    FRIENDLY = "friendly"
    FORMAL = "formal"


class Verdict(pydantic.BaseModel):
    tone: Tone
    summary: str
    score: float
    tags: list[str]


@pytest.mark.asyncio
async def test_default_reply_satisfies_json_schema_response_format(client):
    res = await client.chat.completions.parse(model="m", messages=USER_MSG, response_format=Verdict)
    assert res.choices[0].message.parsed == Verdict(tone=Tone.FRIENDLY, summary="x", score=0, tags=[])


@pytest.mark.asyncio
async def test_models_list_with_shutdown_date_and_disabled_endpoint(oai, client):
    oai.models["gpt-4o-mini"] = "2026-03-31"
    models = {m.id: m for m in (await client.models.list()).data}
    assert set(models) == {"gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o"}
    assert models["gpt-4o-mini"].shutdown_date == "2026-03-31"
    assert getattr(models["gpt-4o"], "shutdown_date", None) is None
    oai.models_endpoint_enabled = False
    with pytest.raises(openai.NotFoundError):
        await client.models.list()


@pytest.mark.asyncio
async def test_latency_is_concurrent(oai, client):
    oai.latency = 0.3
    started = time.monotonic()
    await asyncio.gather(*(client.chat.completions.create(model="m", messages=USER_MSG) for _ in range(100)))
    assert time.monotonic() - started < 2.0
    assert len(oai.requests) == 100


def test_sync_client_and_subprocess_can_use_the_fake(oai):
    with openai.OpenAI(base_url=oai.api_url, api_key="sk-test", max_retries=0) as sync_client:
        reply = sync_client.chat.completions.create(model="gpt-4.1", messages=USER_MSG)
    assert reply.choices[0].message.content == "[gpt-4.1] hello there"
    code = f"import urllib.request; print(urllib.request.urlopen('{oai.api_url}/models').read().decode())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(out.stdout)["object"] == "list"


def test_stop_releases_thread_and_port():
    threads_before = set(threading.enumerate())
    fake = FakeOpenAI()
    port = int(fake.start().rsplit(":", 1)[1])
    fake.stop()
    fake.stop()  # idempotent
    assert set(threading.enumerate()) == threads_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


# --- FakeOpenAI: today's models ----------------------------------------------------------------

DEC_3 = date(2026, 12, 3)


def _error_body(info: pytest.ExceptionInfo) -> dict:
    return info.value.response.json()


@pytest.mark.asyncio
async def test_like_openai_lists_only_models_not_yet_shut_down_with_their_dates(oai, client):
    oai.serve_like_openai(DEC_3)
    listed = {m.id: m.shutdown_date for m in (await client.models.list()).data}
    assert "gpt-4.1-nano" not in listed and "gpt-4.1-nano-2025-04-14" not in listed and "o4-mini" not in listed
    assert (listed["gpt-5-nano"], listed["gpt-5"], listed["gpt-4o"], listed["gpt-4.1-mini"]) == (
        "2026-12-11",
        "2026-12-11",
        "2027-01-14",
        "2027-01-14",
    )
    assert {m: listed[m] for m in ("gpt-5.4-nano", "gpt-5.6-luna", "gpt-6-luna", "gpt-6-sol")} == dict.fromkeys(
        ("gpt-5.4-nano", "gpt-5.6-luna", "gpt-6-luna", "gpt-6-sol")
    )
    raw = (await client.models.with_raw_response.list()).http_response.json()
    luna = next(m for m in raw["data"] if m["id"] == "gpt-6-luna")
    assert raw["object"] == "list" and luna == {
        "id": "gpt-6-luna",
        "object": "model",
        "created": 1790035200,
        "owned_by": "system",
        "shutdown_date": None,
    }
    assert (await client.models.retrieve("gpt-5-mini")).shutdown_date == "2026-12-11"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-4.1-nano")


@pytest.mark.asyncio
async def test_like_openai_a_shut_down_or_unknown_model_answers_404_model_not_found(oai, client):
    oai.serve_like_openai(DEC_3)
    for model in ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "no-such-model"):
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model=model, messages=USER_MSG)
        assert _error_body(info) == {
            "error": {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        }
    assert len(oai.calls_for("gpt-4.1-nano")) == 1
    oai.today = date(2026, 12, 10)
    assert (await client.chat.completions.create(model="gpt-5-nano", messages=USER_MSG)).model == "gpt-5-nano"
    oai.today = date(2026, 12, 11)  # the shutdown date itself: no longer served, no longer listed
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="gpt-5-nano", messages=USER_MSG)
    assert "gpt-5-nano" not in {m.id for m in (await client.models.list()).data}
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER_MSG)).model == "gpt-4o"


def test_like_openai_survives_reset_and_today_defaults_to_the_real_date():
    fake = FakeOpenAI(like_openai=True, today=DEC_3)
    fake.serve_like_gateway("gpt-4.1-nano")
    fake.today = date(2027, 1, 1)
    fake.reset()
    assert (fake.models, fake.today) == (None, DEC_3)
    assert "gpt-4.1-nano" not in fake.listed_models() and fake.listed_models()["gpt-6-luna"] is None
    before = datetime.now(UTC).date()
    real_today = FakeOpenAI().current_date()
    assert before <= real_today <= datetime.now(UTC).date()
    assert FakeOpenAI().models == dict.fromkeys(DEFAULT_MODELS)


@pytest.mark.asyncio
async def test_gateway_lists_past_shutdown_dates_and_still_serves_those_models(oai, client):
    oai.today = DEC_3
    oai.serve_like_gateway("gpt-4.1-nano", "gpt-6-luna")
    listed = {m.id: m.shutdown_date for m in (await client.models.list()).data}
    assert listed == {"gpt-4.1-nano": "2026-10-23", "gpt-6-luna": None}
    answer = await client.chat.completions.create(model="gpt-4.1-nano", messages=USER_MSG, max_tokens=50)
    assert answer.choices[0].message.content == "[gpt-4.1-nano] hello there"


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["gpt-5-nano", "gpt-5.4-nano", "gpt-5.6-luna", "gpt-6-luna", "gpt-6-sol"])
async def test_reasoning_models_refuse_max_tokens(oai, client, model):
    oai.script(model, Reply("kept for the next call"))
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=model, messages=USER_MSG, max_tokens=100)
    assert _error_body(info) == {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }
    assert (info.value.code, info.value.param) == ("unsupported_parameter", "max_tokens")
    ok = await client.chat.completions.create(model=model, messages=USER_MSG, max_completion_tokens=5000)
    assert ok.choices[0].message.content == "kept for the next call"
    assert len(oai.calls_for(model)) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("temperature, shown", [(0.2, "0.2"), (0, "0"), (1.5, "1.5")])
async def test_reasoning_models_refuse_a_temperature_other_than_1(client, temperature, shown):
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, temperature=temperature)
    assert _error_body(info) == {
        "error": {
            "message": f"Unsupported value: 'temperature' does not support {shown} with this model. "
            "Only the default (1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    }
    assert (await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, temperature=1)).choices


@pytest.mark.asyncio
async def test_reasoning_models_give_no_logprobs_unless_they_do_not_reason(oai, client):
    for model, effort in [("gpt-5-nano", "minimal"), ("gpt-6-luna", None), ("gpt-6-luna", "low")]:
        extra = {"reasoning_effort": effort} if effort else {}
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model=model, messages=USER_MSG, logprobs=True, **extra)
        assert _error_body(info)["error"] == {
            "message": "Unsupported parameter: 'logprobs' is not supported with this model.",
            "type": "invalid_request_error",
            "param": "logprobs",
            "code": "unsupported_parameter",
        }
    oai.script("gpt-6-luna", Reply("Yes", logprobs=[("Yes", -0.02)]))
    plain = await client.chat.completions.create(
        model="gpt-6-luna", messages=USER_MSG, reasoning_effort="none", temperature=0, logprobs=True
    )
    assert [t.token for t in plain.choices[0].logprobs.content] == ["Yes"]
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="gpt-5-nano", messages=USER_MSG, temperature=0.5, reasoning_effort="minimal"
        )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "model, effort, supported",
    [
        ("gpt-5-nano", "none", "'minimal', 'low', 'medium', and 'high'"),
        ("gpt-5.4-nano", "max", "'none', 'low', 'medium', 'high', and 'xhigh'"),
        ("gpt-6-luna", "minimal", "'none', 'low', 'medium', 'high', 'xhigh', and 'max'"),
    ],
)
async def test_reasoning_effort_values_each_model_refuses(client, model, effort, supported):
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=model, messages=USER_MSG, reasoning_effort=effort)
    assert _error_body(info) == {
        "error": {
            "message": f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this model. "
            f"Supported values are: {supported}.",
            "type": "invalid_request_error",
            "param": "reasoning_effort",
            "code": "unsupported_value",
        }
    }


@pytest.mark.asyncio
async def test_non_reasoning_models_refuse_reasoning_effort_and_take_either_token_cap(client):
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER_MSG, reasoning_effort="low")
    assert _error_body(info) == {
        "error": {
            "message": "Unrecognized request argument supplied: reasoning_effort",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    for cap in ({"max_tokens": 50}, {"max_completion_tokens": 50}):
        res = await client.chat.completions.create(
            model="gpt-4.1-mini", messages=USER_MSG, temperature=0.2, logprobs=True, **cap
        )
        assert res.choices[0].finish_reason == "stop" and res.usage.completion_tokens == 3
        assert res.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.asyncio
async def test_reasoning_tokens_are_reported_and_counted_in_completion_tokens(oai, client):
    medium = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG)
    none = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, reasoning_effort="none")
    minimal = await client.chat.completions.create(model="gpt-5-mini", messages=USER_MSG, reasoning_effort="minimal")
    high = await client.chat.completions.create(model="gpt-5-mini", messages=USER_MSG, reasoning_effort="high")
    for res, reasoning in [(medium, 256), (none, 0), (minimal, 0), (high, 1024)]:
        assert res.usage.completion_tokens_details.reasoning_tokens == reasoning
        assert res.usage.completion_tokens == 3 + reasoning
        assert res.usage.total_tokens == 2 + 3 + reasoning
        assert res.choices[0].logprobs is None
    oai.script("gpt-6-sol", Reply("four words of answer", completion_tokens=4, reasoning_tokens=40))
    scripted = await client.chat.completions.create(model="gpt-6-sol", messages=USER_MSG)
    assert (scripted.usage.completion_tokens, scripted.usage.completion_tokens_details.reasoning_tokens) == (44, 40)


@pytest.mark.asyncio
async def test_reasoning_uses_up_max_completion_tokens_and_cuts_the_answer(oai, client):
    oai.script("gpt-6-luna", *[Reply("one two three four", reasoning_tokens=100)] * 3)
    cut = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, max_completion_tokens=102)
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("one two", "length")
    assert (cut.usage.completion_tokens, cut.usage.completion_tokens_details.reasoning_tokens) == (102, 100)
    empty = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, max_completion_tokens=60)
    assert (empty.choices[0].message.content, empty.choices[0].finish_reason) == ("", "length")
    assert (empty.usage.completion_tokens, empty.usage.completion_tokens_details.reasoning_tokens) == (60, 60)
    whole = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, max_completion_tokens=104)
    assert (whole.choices[0].message.content, whole.choices[0].finish_reason) == ("one two three four", "stop")


@pytest.mark.asyncio
async def test_cached_and_cache_write_tokens(oai, client):
    oai.script("gpt-6-luna", Reply("ok", prompt_tokens=4000, cached_tokens=1024, cache_write_tokens=2048))
    written = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG)
    details = written.usage.prompt_tokens_details
    assert (details.cached_tokens, details.cache_write_tokens) == (1024, 2048)
    plain = await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG)
    assert (plain.usage.prompt_tokens_details.cached_tokens, plain.usage.prompt_tokens_details.cache_write_tokens) == (
        0,
        None,
    )


@pytest.mark.asyncio
async def test_refusal_and_content_filter(oai, client):
    oai.script("gpt-4o", Reply.refused(), Reply.content_filtered(), Reply.content_filtered("Part of"))
    refused = (await client.chat.completions.create(model="gpt-4o", messages=USER_MSG, logprobs=True)).choices[0]
    assert (refused.message.content, refused.message.refusal, refused.finish_reason) == (
        None,
        "I'm sorry, but I can't help with that.",
        "stop",
    )
    assert refused.logprobs is None
    filtered = (await client.chat.completions.create(model="gpt-4o", messages=USER_MSG)).choices[0]
    assert (filtered.message.content, filtered.message.refusal, filtered.finish_reason) == (
        None,
        None,
        "content_filter",
    )
    partial = (await client.chat.completions.create(model="gpt-4o", messages=USER_MSG)).choices[0]
    assert (partial.message.content, partial.finish_reason) == ("Part of", "content_filter")


@pytest.mark.asyncio
async def test_project_without_access_to_a_model_is_a_403_model_not_found(oai, client):
    oai.script("gpt-6-sol", Fail.no_model_access("gpt-6-sol"))
    with pytest.raises(openai.PermissionDeniedError) as info:
        await client.chat.completions.create(model="gpt-6-sol", messages=USER_MSG)
    assert info.value.status_code == 403 and _error_body(info) == {
        "error": {
            "message": "Project `proj_abc` does not have access to model `gpt-6-sol`",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


@pytest.mark.asyncio
async def test_a_wrong_url_is_a_404_without_error_code(oai):
    async with openai.AsyncOpenAI(base_url=oai.base_url, api_key="x", max_retries=0) as no_v1:
        with pytest.raises(openai.NotFoundError) as info:
            await no_v1.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    assert _error_body(info) == {
        "error": {
            "message": "Invalid URL (POST /chat/completions)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert info.value.code is None and info.value.request_id.startswith("req_")
    assert oai.requests == []


@pytest.mark.asyncio
async def test_every_answer_carries_an_x_request_id_recorded_with_the_request(oai, client):
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER_MSG)
    listing = await client.models.with_raw_response.list()
    oai.script("gpt-4o", Fail.server_error())
    with pytest.raises(openai.InternalServerError) as failed:
        await client.chat.completions.create(model="gpt-4o", messages=USER_MSG)
    ok_id, failed_id = (r.request_id for r in oai.calls_for("gpt-4o"))
    assert raw.headers["x-request-id"] == ok_id and failed.value.request_id == failed_id
    assert re.fullmatch(r"req_[0-9a-f]{32}", ok_id) and ok_id != failed_id
    assert listing.headers["x-request-id"] == oai.listing_requests[0].request_id


@pytest.mark.asyncio
async def test_service_tier_is_echoed_and_flex_may_be_unavailable(oai, client):
    tiers = [
        await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, **extra)
        for extra in ({}, {"service_tier": "auto"}, {"service_tier": "flex"}, {"service_tier": "priority"})
    ]
    assert [t.service_tier for t in tiers] == ["default", "default", "flex", "priority"]
    oai.flex_available = False
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG, service_tier="flex")
    assert info.value.status_code == 429 and _error_body(info) == {
        "error": {
            "message": "Resource unavailable",
            "type": "invalid_request_error",
            "param": None,
            "code": "resource_unavailable",
        }
    }
    assert (await client.chat.completions.create(model="gpt-6-luna", messages=USER_MSG)).service_tier == "default"


@pytest.mark.asyncio
async def test_client_headers_are_recorded_on_chat_calls_and_on_the_listing(oai):
    async with openai.AsyncOpenAI(
        base_url=oai.api_url,
        api_key="x",
        max_retries=0,
        organization="org-frugal",
        project="proj_frugal",
        default_headers={"X-Gateway-Key": "g1"},
    ) as configured:
        await configured.chat.completions.create(model="gpt-4o", messages=USER_MSG)
        await configured.models.list()
    for recorded in (oai.requests[0], oai.listing_requests[0]):
        headers = recorded.headers
        assert (headers["OpenAI-Organization"], headers["openai-project"], headers["x-gateway-key"]) == (
            "org-frugal",
            "proj_frugal",
            "g1",
        )
        assert headers["authorization"] == "Bearer x"


# --- FakeSlack --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_auth_test_defaults_overrides_and_strict_tokens(slack, web):
    res = await web.auth_test()
    assert (res["team_id"], res["user_id"], res["bot_id"]) == ("T0001", "UBOT", "BBOT")
    slack.tokens["xoxb-other"] = {"team_id": "T0002", "user_id": "UBOT2"}
    other = await web.auth_test(token="xoxb-other")
    assert (other["team_id"], other["user_id"]) == ("T0002", "UBOT2")
    assert [c.token for c in slack.calls_to("auth.test")] == ["xoxb-test", "xoxb-other"]
    slack.strict_tokens = True
    with pytest.raises(SlackApiError) as err:
        await web.auth_test()
    assert err.value.response["error"] == "invalid_auth"


@pytest.mark.asyncio
async def test_post_message_with_blocks_records_params_and_unique_ts(slack, web):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = await web.chat_postMessage(channel="C1", text="hi", blocks=blocks, thread_ts="1.2")
    second = await web.chat_postMessage(channel="C1", text="again")
    assert first["channel"] == "C1" and first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == blocks and first["message"]["thread_ts"] == "1.2"
    call = slack.calls_to("chat.postMessage")[0]
    assert call.params["blocks"] == blocks and call.token == "xoxb-test"


@pytest.mark.asyncio
async def test_users_info_and_conversation_replies(slack, web):
    slack.users["UADMIN"] = {"is_admin": True, "tz": "America/New_York", "tz_offset": -18000}
    admin = (await web.users_info(user="UADMIN"))["user"]
    plain = (await web.users_info(user="U1"))["user"]
    assert (admin["is_admin"], admin["tz"], plain["is_admin"], plain["tz"]) == (
        True,
        "America/New_York",
        False,
        "Europe/Paris",
    )
    thread = [{"ts": "1.1", "text": "root", "user": "U1"}, {"ts": "1.2", "text": "reply", "user": "U2"}]
    slack.threads[("C1", "1.1")] = thread
    assert (await web.conversations_replies(channel="C1", ts="1.1"))["messages"] == thread
    assert (await web.conversations_replies(channel="C1", ts="9.9"))["messages"] == []


@pytest.mark.asyncio
async def test_files_upload_v2_three_steps(slack, web):
    res = await web.files_upload_v2(channel="C1", filename="bill.csv", content=b"a,b\n1,2\n", title="Bill")
    assert res["file"]["title"] == "Bill"
    assert slack.uploads == {res["file"]["id"]: b"a,b\n1,2\n"}
    assert [c.method for c in slack.calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


@pytest.mark.asyncio
async def test_fault_injection_429_then_recovery(slack, web):
    slack.fail("chat.postMessage", times=1)
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "1"
    assert (await web.chat_postMessage(channel="C1", text="hi"))["ok"]


@pytest.mark.asyncio
async def test_responses_override_and_method_latency(slack, web):
    slack.responses["team.info"] = {"ok": True, "team": {"id": "T0001", "name": "Override"}}
    slack.method_latency["team.info"] = 0.2
    started = time.monotonic()
    assert (await web.team_info())["team"]["name"] == "Override"
    assert time.monotonic() - started >= 0.2


@pytest.mark.asyncio
async def test_response_url_via_webhook_client(slack):
    webhook = AsyncWebhookClient(slack.response_url("r1"))
    res = await webhook.send(text="done", response_type="ephemeral")
    assert (res.status_code, res.body) == (200, "ok")
    [call] = await slack.await_calls("response_url:r1")
    assert call.params == {"text": "done", "response_type": "ephemeral"}


@pytest.mark.asyncio
async def test_wait_for_blocks_until_calls_arrive_and_reports_on_timeout(slack, web):
    async def post_later():
        await asyncio.sleep(0.1)
        await web.chat_postMessage(channel="C1", text="late")

    task = asyncio.create_task(post_later())
    calls = await asyncio.to_thread(slack.wait_for, "chat.postMessage", predicate=lambda c: c.params["text"] == "late")
    await task
    assert calls[0].params["channel"] == "C1"
    with pytest.raises(AssertionError, match=r"(?s)chat.delete.*chat.postMessage"):
        slack.wait_for("chat.delete", timeout=0.05)
    with pytest.raises(AssertionError):
        await slack.await_calls("chat.postMessage", count=2, timeout=0.05)


def test_sync_web_client(slack):
    sync_client = WebClient(token="xoxb-sync", base_url=slack.api_url)
    assert sync_client.chat_postEphemeral(channel="C1", user="U1", text="x")["message_ts"]
    assert slack.wait_for("chat.postEphemeral")[0].token == "xoxb-sync"


# --- Slack signing and payload builders --------------------------------------------------------


def test_sign_request_matches_slack_sdk_verifier():
    body, _ = slash_command("/frugal", "hello")
    headers = sign_request(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("wrong").is_valid_request(body, headers)
    assert sign_request(SECRET, body, timestamp=1)["X-Slack-Request-Timestamp"] == "1"


@pytest.mark.asyncio
async def test_payload_builders_are_routed_by_bolt(slack, web):
    app = AsyncApp(signing_secret=SECRET, client=web)
    seen: list[str] = []

    @app.command("/frugal")
    async def command(ack, command, say):
        await ack()
        await say(f"cmd:{command['text']}")

    @app.event("app_mention")
    async def mention(event, say):
        await say(f"mention:{event['text']}", thread_ts=event["ts"])

    @app.action("approve")
    async def action(ack, body, respond):
        await ack()
        await respond(f"action:{body['actions'][0]['value']}")

    @app.shortcut("summarize")
    async def shortcut(ack, shortcut):
        await ack()
        seen.append(shortcut["message"]["text"])

    async def dispatch(body: str, content_type: str):
        headers = {"content-type": content_type, **sign_request(SECRET, body)}
        return await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))

    assert (await dispatch(*slash_command("/frugal", "hi"))).status == 200
    assert (await dispatch(*event_callback(app_mention_event("<@UBOT> yo", ts="5.5")))).status == 200
    msg = {"type": "message", "ts": "7.7", "text": "long text", "user": "U1"}
    assert (await dispatch(*block_actions("approve", "42", response_url=slack.response_url()))).status == 200
    assert (await dispatch(*message_shortcut("summarize", msg))).status == 200
    challenge = await dispatch(*url_verification("abc"))
    assert challenge.status == 200 and json.loads(challenge.body)["challenge"] == "abc"

    posts = await slack.await_calls("chat.postMessage", count=2)
    texts = {c.params["text"]: c.params.get("thread_ts") for c in posts}
    assert texts == {"cmd:hi": None, "mention:<@UBOT> yo": "5.5"}
    [responded] = await slack.await_calls("response_url:r1")
    assert responded.params["text"] == "action:42"
    assert seen == ["long text"]
