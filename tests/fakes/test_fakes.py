"""Prove the fakes behave like the real services for the real openai, slack_sdk and slack_bolt clients."""

from __future__ import annotations

import asyncio
import enum
import json
import socket
import subprocess
import sys
import threading
import time

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

from .openai_server import Drop, Fail, FakeOpenAI, Hang, Reply
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
    assert getattr(models["gpt-4o-mini"], "shutdown_date") == "2026-03-31"
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
        True, "America/New_York", False, "Europe/Paris")
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
    calls = await asyncio.to_thread(
        slack.wait_for, "chat.postMessage", predicate=lambda c: c.params["text"] == "late"
    )
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
