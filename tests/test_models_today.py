"""Today's models end to end: signed requests in, the fake behaving as OpenAI does on 2026-12-03, the ledger out.

gpt-4.1-nano was shut down on 2026-10-23 and OpenAI no longer lists it; its successors are reasoning
models, which refuse `max_tokens` and any temperature but 1 (tests/fakes/openai_models.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

import aiohttp
from sqlalchemy import select

from bot.infra.db.tables import LedgerRow
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_models import ModelSpec
from tests.fakes.openai_server import Reply
from tests.fakes.slack_signing import sign_request, slash_command

TODAY = date(2026, 12, 3)


async def ledger(frugal) -> list:
    async with frugal.container.engine.connect() as conn:
        return (await conn.execute(select(LedgerRow).order_by(LedgerRow.id))).all()


def action_ids(blocks: list[dict]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def every_text(blocks: list[dict]) -> str:
    return str(blocks)


async def test_the_default_chain_answers_today_without_a_failed_call(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    fake_openai.serve_like_openai(TODAY)
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="")  # empty: the default chain
    await frugal.container.lifecycle.startup()

    _, name = await frugal.command("/rewrite", "formal: can u send the report pls")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    # One call, to the first successor, in a reasoning model's shape; none to the retired gpt-4.1-nano.
    [call] = fake_openai.requests
    assert call.json["model"] == "gpt-6-luna"
    assert "max_tokens" not in call.json and "temperature" not in call.json
    assert call.json["reasoning_effort"] == "none" and call.json["max_completion_tokens"] > 0
    assert answer.params["text"].startswith("[gpt-6-luna]")
    # A retired model is no transient failure: the reply carries no fallback line.
    assert "answered because" not in every_text(answer.params["blocks"])
    [row] = await ledger(frugal)
    assert (row.requested_model, row.served_model, row.outcome) == ("gpt-6-luna", "gpt-6-luna", "ok")


async def test_a_chain_of_reasoning_models_answers_rewrite_and_classify(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    fake_openai.serve_like_openai(TODAY)
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="gpt-5-nano,gpt-6-luna")
    await frugal.container.lifecycle.startup()
    fake_openai.script(
        "gpt-5-nano",
        Reply("Could you send the report, please?", prompt_tokens=1000, completion_tokens=20, reasoning_tokens=30),
        Reply('{"label": "bug report"}', prompt_tokens=200, completion_tokens=8),
    )

    _, rewrite = await frugal.command("/rewrite", "can u send the report pls")
    [rewritten] = await fake_slack.await_calls(f"response_url:{rewrite}")
    _, classify = await frugal.command("/classify", "[question, bug report] the build is broken again")
    [classified] = await fake_slack.await_calls(f"response_url:{classify}")

    assert rewritten.params["text"] == "Could you send the report, please?"
    assert "bug report" in classified.params["text"]
    # gpt-5-nano gives no log-probabilities (it thinks at "minimal" at the least): no confidence is made up.
    assert "confidence unknown" in every_text(classified.params["blocks"])
    first, second = fake_openai.requests
    for call in (first, second):
        assert call.json["model"] == "gpt-5-nano" and call.json["reasoning_effort"] == "minimal"
        assert {"max_tokens", "temperature", "logprobs"}.isdisjoint(call.json)
    rewrite_row, classify_row = await ledger(frugal)
    # 30 reasoning tokens on top of the 20 of the answer, billed as output:
    # 1,000 × $0.05 + 50 × $0.40 per million = 70 micro-dollars.
    assert (rewrite_row.completion_tokens, rewrite_row.reasoning_tokens) == (50, 30)
    assert rewrite_row.cost_usd == Decimal("0.00007")
    assert classify_row.outcome == "ok"


async def test_a_model_the_catalog_does_not_know_is_called_the_way_its_error_says(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    # A newer reasoning model than the catalog knows, served by a gateway that lists it.
    fake_openai.catalogue["gpt-7-mini"] = ModelSpec(
        reasoning=True, logprobs=False, efforts=("none", "low"), default_effort="low"
    )
    fake_openai.serve_like_gateway("gpt-7-mini")
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="gpt-7-mini")
    await frugal.container.lifecycle.startup()

    _, first = await frugal.command("/rewrite", "hello team")
    [answer] = await fake_slack.await_calls(f"response_url:{first}")
    _, second = await frugal.command("/rewrite", "hello again")
    await fake_slack.await_calls(f"response_url:{second}")

    assert answer.params["text"].startswith("[gpt-7-mini]")
    refused, retried, remembered = fake_openai.requests
    assert "max_tokens" in refused.json
    assert "max_completion_tokens" in retried.json and "temperature" not in retried.json
    # Remembered: the next request is asked the right way at once.
    assert "max_completion_tokens" in remembered.json and "temperature" not in remembered.json
    rows = await ledger(frugal)
    assert [(r.outcome, r.error_code) for r in rows] == [("error", "unsupported_parameter"), ("ok", None), ("ok", None)]
    # Nobody prices gpt-7-mini: its cost is unknown, never $0.
    assert rows[1].cost_usd is None


async def test_a_refusal_gets_no_post_button_and_is_charged(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply.refused("I can't help with that."))

    _, name = await frugal.command("/rewrite", "write something nasty")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert "declined" in answer.params["text"]
    assert "rewrite_post" not in action_ids(answer.params.get("blocks") or [])
    [row] = await ledger(frugal)
    assert row.outcome == "refused" and row.cost_usd is not None and row.cost_usd > 0


async def test_a_retired_primary_in_the_endpoint_s_list_is_served_past_openai_s_date(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    # Azure, gateways and dedicated capacity keep models past OpenAI's date: the endpoint decides.
    fake_openai.serve_like_gateway("gpt-6-luna")
    fake_openai.models["gpt-4.1-nano"] = None
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="")
    await frugal.container.lifecycle.startup()

    _, name = await frugal.command("/rewrite", "hello")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["text"].startswith("[gpt-4.1-nano]")


# --- `frugal run` with .env ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else "frugal run exited"
            try:
                async with http.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("frugal run did not become healthy")


async def test_dotenv_org_project_and_custom_headers_reach_chat_calls(tmp_path, fake_openai, fake_slack):
    port = _free_port()
    (tmp_path / ".env").write_text(
        "\n".join(
            [
                f"SLACK_BOT_TOKEN={BOT_TOKEN}",
                f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
                f"SLACK_API_URL={fake_slack.api_url}",
                "OPENAI_API_KEY=sk-from-dotenv",
                f"OPENAI_BASE_URL={fake_openai.api_url}",
                "OPENAI_ORG_ID=org-from-dotenv",
                "OPENAI_PROJECT_ID=proj_from_dotenv",
                'OPENAI_CUSTOM_HEADERS="X-Gateway-Key: gw-123"',
                f"DATABASE_URL=sqlite:///{tmp_path / 'frugal.db'}",
                "FRUGAL_MODELS=gpt-4o-mini",
                f"PORT={port}",
            ]
        )
        + "\n"
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_", "PORT"))
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_healthy(url, process)
        name = "dotenv"
        body, content_type = slash_command("/rewrite", "hello", response_url=fake_slack.response_url(name))
        async with aiohttp.ClientSession() as http:
            headers = {"Content-Type": content_type, **sign_request(SIGNING_SECRET, body)}
            async with http.post(f"{url}/slack/events", data=body.encode(), headers=headers) as resp:
                assert resp.status == 200
        await fake_slack.await_calls(f"response_url:{name}", timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=30)

    [call] = fake_openai.requests
    assert call.headers["Authorization"] == "Bearer sk-from-dotenv"
    assert (call.headers["OpenAI-Organization"], call.headers["OpenAI-Project"]) == (
        "org-from-dotenv",
        "proj_from_dotenv",
    )
    assert call.headers["X-Gateway-Key"] == "gw-123"
    # The model list, which `frugal run` reads at start, went out the same way.
    assert all(r.headers.get("X-Gateway-Key") == "gw-123" for r in fake_openai.listing_requests)


async def test_an_answer_cut_at_the_length_limit_says_so(frugal, fake_openai, fake_slack):
    fake_openai.script("gpt-4.1-nano", Reply("Could you send the", finish_reason="length"))

    _, name = await frugal.command("/rewrite", "can u send the report pls")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert "the answer was cut at its length limit" in every_text(answer.params["blocks"])


async def test_classify_on_gpt_6_luna_gives_a_confidence_at_effort_none(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    fake_openai.serve_like_openai(TODAY)
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="gpt-6-luna")
    await frugal.container.lifecycle.startup()
    answer = '{"label": "question"}'
    fake_openai.script("gpt-6-luna", Reply(answer, logprobs=[(answer[:10], -0.01), (answer[10:], -0.1)]))

    _, name = await frugal.command("/classify", "[question, bug report] is the build green?")

    [classified] = await fake_slack.await_calls(f"response_url:{name}")
    [call] = fake_openai.requests
    assert call.json["logprobs"] is True and call.json["reasoning_effort"] == "none"
    assert "confidence" in every_text(classified.params["blocks"]) and "unknown" not in every_text(
        classified.params["blocks"]
    )


async def test_classify_on_flex_is_priced_at_flex_and_falls_back_to_the_default_tier(
    start_frugal, migrated_url, fake_openai, fake_slack
):
    from tests.fakes.openai_server import Fail

    fake_openai.serve_like_openai(TODAY)
    frugal = await start_frugal(migrated_url, FRUGAL_MODELS="gpt-6-luna", FRUGAL_CLASSIFY_SERVICE_TIER="flex")
    await frugal.container.lifecycle.startup()
    fake_openai.script(
        "gpt-6-luna",
        Reply('{"label": "question"}', prompt_tokens=1000, completion_tokens=10),
        Fail.flex_unavailable(),
        Reply('{"label": "question"}', prompt_tokens=1000, completion_tokens=10),
    )

    for text in ("is the build green?", "is the deploy done?"):
        _, name = await frugal.command("/classify", f"[question, bug report] {text}")
        await fake_slack.await_calls(f"response_url:{name}")

    flex, refused, default = fake_openai.requests
    assert (flex.json["service_tier"], refused.json["service_tier"]) == ("flex", "flex")
    assert "service_tier" not in default.json
    rows = await ledger(frugal)
    assert [(r.outcome, r.error_code, r.service_tier) for r in rows] == [
        ("ok", None, "flex"),
        ("error", "resource_unavailable", None),
        ("ok", None, "default"),
    ]
    # 1,000 × $0.10 + 10 × $0.50 per million = 105 micro-dollars; half of that on flex.
    assert (rows[0].cost_usd, rows[2].cost_usd) == (Decimal("0.0000525"), Decimal("0.000105"))
