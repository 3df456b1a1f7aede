"""GET /metrics end to end: signed commands in, the fake OpenAI scripted, the Prometheus text read back over HTTP."""

from __future__ import annotations

from decimal import Decimal

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.infra.db.tables import LedgerRow
from tests.fakes.openai_server import Fail, Reply

ADMIN = "UADMIN1"
CHANNEL = "C0001"


@pytest.fixture
def start(start_frugal):
    """`start_frugal`, whose web app serves the container's metrics as `frugal run` does."""
    return start_frugal


@pytest.fixture
def admins(fake_slack):
    """users.info says ADMIN is a workspace admin."""
    fake_slack.users[ADMIN] = {"is_admin": True}
    return fake_slack


async def scrape(frugal) -> tuple[str, dict]:
    """GET /metrics: the raw text, and its samples as {(name, sorted labels): value}."""
    async with frugal.http.get(f"{frugal.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    """The value of the sample with exactly these labels, or None when there is none."""
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include these (as sum() by nothing would add them)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


async def ask(frugal, fake_slack, command: str, text: str, **fields) -> dict:
    """Send a signed slash command and wait for its answer on the response_url."""
    response, name = await frugal.command(command, text, **fields)
    assert response.status == 200
    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    return answer.params


async def ledger(frugal) -> list:
    async with frugal.container.engine.connect() as conn:
        return (await conn.execute(select(LedgerRow))).all()


async def test_requests_tokens_cost_and_latency_by_task_and_model(start, migrated_url, fake_openai, fake_slack):
    frugal = await start(migrated_url)
    fake_openai.script(
        "gpt-4.1-nano", Reply("Hello there.", prompt_tokens=1000, completion_tokens=500, cached_tokens=200)
    )
    await ask(frugal, fake_slack, "/rewrite", "hello", user_id="U42", channel_id="C42")
    await ask(frugal, fake_slack, "/classify", "[bug, feature] the app crashes", user_id="U42", channel_id="C42")

    text, samples = await scrape(frugal)

    nano = {"model": "gpt-4.1-nano"}
    assert value(samples, "frugal_model_requests_total", task="rewrite", outcome="ok", **nano) == 1
    assert value(samples, "frugal_model_requests_total", task="classify", outcome="ok", **nano) == 1
    assert value(samples, "frugal_model_tokens_total", task="rewrite", kind="prompt", **nano) == 1000
    assert value(samples, "frugal_model_tokens_total", task="rewrite", kind="cached", **nano) == 200
    assert value(samples, "frugal_model_tokens_total", task="rewrite", kind="completion", **nano) == 500
    assert value(samples, "frugal_model_tokens_total", task="rewrite", kind="reasoning", **nano) == 0
    # 800 × $0.10 + 200 × $0.025 + 500 × $0.40 per million tokens
    assert value(samples, "frugal_model_cost_usd_total", task="rewrite", **nano) == pytest.approx(0.000285)
    [classified] = [row for row in await ledger(frugal) if row.task == "classify"]
    assert (
        value(samples, "frugal_model_tokens_total", task="classify", kind="prompt", **nano) == classified.prompt_tokens
    )
    assert value(samples, "frugal_model_cost_usd_total", task="classify", **nano) == pytest.approx(
        float(classified.cost_usd)
    )
    latency = {"task": "rewrite", "outcome": "ok", **nano}
    assert value(samples, "frugal_model_call_latency_seconds_count", **latency) == 1
    assert value(samples, "frugal_model_call_latency_seconds_bucket", le="+Inf", **latency) == 1
    assert value(samples, "frugal_fallbacks_total", task="rewrite", model="gpt-4.1-nano", reason="server_error") is None
    # Channels and users appear only where a quota is reported; no user ID, no text, ever.
    assert "U42" not in text and "hello" not in text and "crashes" not in text


async def test_a_fallback_is_counted_once_with_its_reason(start, migrated_url, fake_openai, fake_slack):
    frugal = await start(migrated_url)
    # Two server errors: one retry on the same model (not a fallback), then the next model of the chain.
    fake_openai.script("gpt-4.1-nano", Fail.server_error(), Fail.server_error())

    answer = await ask(frugal, fake_slack, "/rewrite", "hello")

    assert "gpt-4o-mini" in answer["text"]
    _, samples = await scrape(frugal)
    assert value(samples, "frugal_fallbacks_total", task="rewrite", model="gpt-4.1-nano", reason="server_error") == 1
    assert total(samples, "frugal_fallbacks_total") == 1
    assert value(samples, "frugal_model_requests_total", task="rewrite", model="gpt-4.1-nano", outcome="error") == 2
    assert value(samples, "frugal_model_requests_total", task="rewrite", model="gpt-4o-mini", outcome="ok") == 1
    assert (
        value(samples, "frugal_model_call_latency_seconds_count", task="rewrite", model="gpt-4.1-nano", outcome="error")
        == 2
    )
    assert total(samples, "frugal_model_requests_total") == len(await ledger(frugal))


async def test_a_request_that_fails_counts_the_failure_it_ended_on(start, migrated_url, fake_openai, fake_slack):
    frugal = await start(migrated_url, FRUGAL_MODELS="gpt-4.1-nano")
    fake_openai.script("gpt-4.1-nano", Fail.model_not_found("gpt-4.1-nano"))

    answer = await ask(frugal, fake_slack, "/rewrite", "hello")

    assert "Nothing was charged" in answer["text"]
    _, samples = await scrape(frugal)
    assert value(samples, "frugal_fallbacks_total", task="rewrite", model="gpt-4.1-nano", reason="model_not_found") == 1
    assert value(samples, "frugal_model_requests_total", task="rewrite", model="gpt-4.1-nano", outcome="error") == 1


async def test_a_gateways_long_error_code_is_cut_short_in_the_label(start, migrated_url, fake_openai, fake_slack):
    frugal = await start(migrated_url)
    fake_openai.script("gpt-4.1-nano", Fail(400, "upstream_" + "x" * 200))

    await ask(frugal, fake_slack, "/rewrite", "hello")

    _, samples = await scrape(frugal)
    [reason] = [dict(labels)["reason"] for (name, labels) in samples if name == "frugal_fallbacks_total"]
    assert reason == ("upstream_" + "x" * 200)[:40]


async def test_quota_remaining_of_a_channel_is_read_at_each_scrape(start, migrated_url, fake_slack, admins):
    frugal = await start(migrated_url)
    response, _ = await frugal.command("/frugal", "quota set here 10 requests/day", user_id=ADMIN, channel_id=CHANNEL)
    assert response.status == 200 and (await response.json())["text"].startswith("Done:")
    quota = {"team": "T0001", "channel": CHANNEL, "scope": "channel", "metric": "requests", "period": "day"}

    await ask(frugal, fake_slack, "/rewrite", "hello", channel_id=CHANNEL)
    text, samples = await scrape(frugal)
    assert value(samples, "frugal_quota_remaining", **quota) == 9
    assert "aggregate with max(), never sum()" in text

    await ask(frugal, fake_slack, "/classify", "[a, b] hello", channel_id=CHANNEL)
    _, samples = await scrape(frugal)
    assert value(samples, "frugal_quota_remaining", **quota) == 8

    response, _ = await frugal.command("/frugal", "quota clear here", user_id=ADMIN, channel_id=CHANNEL)
    assert response.status == 200
    _, samples = await scrape(frugal)
    assert total(samples, "frugal_quota_remaining") == 0 and value(samples, "frugal_quota_remaining", **quota) is None


async def test_two_replicas_each_export_their_own_counts(start, migrated_url, fake_openai, fake_slack, admins):
    one, two = await start(migrated_url), await start(migrated_url)
    response, _ = await one.command("/frugal", "quota set here 10 requests/day", user_id=ADMIN, channel_id=CHANNEL)
    assert response.status == 200
    for text in ("a", "b", "c"):
        await ask(one, fake_slack, "/rewrite", text, channel_id=CHANNEL)
    fake_openai.script("gpt-4.1-nano", Fail.server_error(), Fail.server_error())
    await ask(two, fake_slack, "/rewrite", "d", channel_id=CHANNEL)
    await ask(two, fake_slack, "/classify", "[x, y] e", channel_id=CHANNEL)

    (_, first), (_, second) = await scrape(one), await scrape(two)

    assert total(first, "frugal_model_requests_total") == 3
    assert total(second, "frugal_model_requests_total") == 4  # two errors, gpt-4o-mini, then the classify
    assert total(first, "frugal_fallbacks_total") == 0 and total(second, "frugal_fallbacks_total") == 1
    rows = await ledger(one)
    assert total(first, "frugal_model_requests_total") + total(second, "frugal_model_requests_total") == len(rows)
    summed_cost = total(first, "frugal_model_cost_usd_total") + total(second, "frugal_model_cost_usd_total")
    assert summed_cost == pytest.approx(float(sum((row.cost_usd or Decimal(0)) for row in rows)))
    summed_prompt = total(first, "frugal_model_tokens_total", kind="prompt") + total(
        second, "frugal_model_tokens_total", kind="prompt"
    )
    async with one.container.engine.connect() as conn:
        assert summed_prompt == await conn.scalar(select(func.sum(LedgerRow.prompt_tokens)))
    # The quota is one shared value: both replicas report it alike (max() over them is the truth).
    quota = {"team": "T0001", "channel": CHANNEL, "scope": "channel", "metric": "requests", "period": "day"}
    assert value(first, "frugal_quota_remaining", **quota) == value(second, "frugal_quota_remaining", **quota) == 5


async def test_metrics_live_on_the_process_registry_not_the_global_one(start, migrated_url, fake_slack):
    frugal = await start(migrated_url)
    await ask(frugal, fake_slack, "/rewrite", "hello")

    _, samples = await scrape(frugal)

    assert total(samples, "frugal_model_requests_total") == 1
    assert b"frugal_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
