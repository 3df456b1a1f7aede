"""Model lifecycle against the fake OpenAI server: did-you-mean, aliases, shutdown dates, endpoints that cannot list."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.catalog import Catalog
from bot.config import ConfigError
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.chat import RemoteModel
from bot.ports.model_status import ModelHealth
from bot.services.lifecycle import LifecycleService, check_model_ids, list_remote_models, resolve_baseline
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import Fail

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.date()


@pytest.fixture
async def lister(fake_openai) -> AsyncIterator[OpenAIChatModel]:
    model = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    yield model
    await model.close()


def service(lister, *models: str, health=None) -> LifecycleService:
    return LifecycleService(lister, Catalog.load(), models, health=health, clock=lambda: NOW)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --- did you mean ------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["gpt4.1nano", "gpt_4_1_nano", "GPT-4.1-Nano", "gpt-4.1nano"])
@pytest.mark.parametrize("listing", [True, False], ids=["listed", "no-models-endpoint"])
async def test_a_misspelled_model_stops_the_start_with_did_you_mean(lister, fake_openai, spelling, listing):
    fake_openai.models_endpoint_enabled = listing

    with pytest.raises(ConfigError) as stopped:
        await service(lister, spelling, "gpt-4o-mini").startup()

    assert str(stopped.value) == f"FRUGAL_MODELS: unknown model {spelling!r} — did you mean 'gpt-4.1-nano'?"


def test_did_you_mean_works_without_any_listing():
    with pytest.raises(ConfigError, match="did you mean 'gpt-4o-mini'"):
        check_model_ids(["gpt-4o-mimi"], Catalog.load(), None)


async def test_catalog_aliases_are_accepted_and_resolved(lister):
    report = await service(lister, "nano", "gpt-4o-mini-2024-07-18").startup()

    assert [(m.configured_as, m.model, m.listed) for m in report.models] == [
        ("nano", "gpt-4.1-nano", True),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", True),
    ]
    assert report.warnings() == []


async def test_a_model_the_endpoint_lists_is_accepted_even_if_the_catalog_does_not_know_it(lister, fake_openai):
    fake_openai.models["local-llm"] = None

    report = await service(lister, "local-llm").startup()

    [model] = report.models
    assert (model.model, model.listed, model.in_catalog, model.price) == ("local-llm", True, False, None)
    assert report.warnings() == [
        'local-llm has no known price, so its cost shows as "price unknown"; add it to the FRUGAL_MODEL_CATALOG file.'
    ]


async def test_an_id_neither_known_nor_listed_stops_the_start(lister):
    with pytest.raises(ConfigError) as stopped:
        await service(lister, "gpt-4.1-nano", "llama3").startup()

    assert str(stopped.value) == "FRUGAL_MODELS: unknown model 'llama3'"


# --- shutdown dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "warning"),
    [
        (10, "gpt-4.1-nano shuts down on 2026-12-05 (in 10 days); replace it in FRUGAL_MODELS before then."),
        (30, "gpt-4.1-nano shuts down on 2026-12-25 (in 30 days); replace it in FRUGAL_MODELS before then."),
        (1, "gpt-4.1-nano shuts down on 2026-11-26 (tomorrow); replace it in FRUGAL_MODELS before then."),
        (31, None),
    ],
)
async def test_a_shutdown_within_30_days_is_a_warning(lister, fake_openai, caplog, days, warning):
    fake_openai.models["gpt-4.1-nano"] = (TODAY + timedelta(days=days)).isoformat()

    with caplog.at_level(logging.WARNING, logger="bot.services.lifecycle"):
        report = await service(lister, "gpt-4.1-nano", "gpt-4o-mini").startup()

    assert report.models[0].shutdown_date == TODAY + timedelta(days=days)
    assert report.warnings() == ([warning] if warning else [])
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ([f"model lifecycle: {warning}"] if warning else [])


async def test_a_past_shutdown_and_a_model_no_longer_listed_are_warned_but_do_not_stop_the_start(lister, fake_openai):
    fake_openai.models["gpt-4o-mini"] = "2026-11-01"
    del fake_openai.models["gpt-4.1-nano"]

    report = await service(lister, "gpt-4.1-nano", "gpt-4o-mini").startup()

    assert report.warnings() == [
        "gpt-4.1-nano is not offered by the endpoint (retired, or this API key has no access).",
        "gpt-4o-mini was shut down on 2026-11-01; replace it in FRUGAL_MODELS.",
    ]


async def test_the_catalog_shutdown_date_is_the_fallback_when_the_endpoint_gives_none(lister, fake_openai, tmp_path):
    override = tmp_path / "catalog.json"
    override.write_text('{"models": [{"id": "gpt-4o-mini", "shutdown_date": "2026-12-01"}]}')
    fake_openai.models_endpoint_enabled = False
    lifecycle = LifecycleService(lister, Catalog.load(override), ("gpt-4o-mini",), clock=lambda: NOW)

    report = await lifecycle.startup()

    assert report.models[0].shutdown_date == date(2026, 12, 1)
    assert "gpt-4o-mini shuts down on 2026-12-01 (in 6 days)" in report.warnings()[0]


# --- endpoints that cannot list ----------------------------------------------------------------


async def test_an_endpoint_without_v1_models_is_noted_not_fatal(lister, fake_openai):
    fake_openai.models_endpoint_enabled = False

    report = await service(lister, "gpt-4.1-nano", "gpt-4o-mini").startup()

    assert report.listing_problem == "the endpoint has no usable /v1/models (HTTP 404)"
    assert [m.listed for m in report.models] == [None, None]
    assert report.warnings() == []


async def test_an_unreachable_endpoint_at_start_is_noted_not_fatal():
    lister = OpenAIChatModel(api_key="sk-test", base_url=_closed_port_url(), timeout=2.0)
    try:
        report = await service(lister, "gpt-4.1-nano").startup()
    finally:
        await lister.close()

    # Refused at once, or (on a very busy machine) timed out: either way, unreachable.
    assert report.listing_problem in (
        "the endpoint could not be reached (APIConnectionError)",
        "the endpoint could not be reached (APITimeoutError)",
    )
    assert report.models[0].listed is None


async def test_a_listing_that_hangs_is_given_up_on():
    class Hanging:
        async def list_models(self) -> list[RemoteModel]:
            await asyncio.sleep(30)
            return []

    listing = await list_remote_models(Hanging(), timeout=0.05)

    assert (listing.models, listing.unreachable) == (None, True)
    assert listing.problem == "the endpoint did not list its models within 0.05 s"


async def test_a_refused_key_stops_the_start(lister, fake_openai):
    fake_openai.models_failure = Fail(401, "invalid_api_key", "Incorrect API key provided")

    with pytest.raises(ConfigError) as stopped:
        await service(lister, "gpt-4.1-nano").startup()

    assert str(stopped.value) == "OPENAI_API_KEY: the endpoint refused the key (HTTP 401)"


async def test_a_key_without_permission_to_list_models_is_only_noted(lister, fake_openai):
    # Restricted project keys may call chat completions but not GET /v1/models.
    fake_openai.models_failure = Fail(403, None, "You have insufficient permissions for this operation.")

    report = await service(lister, "gpt-4.1-nano").startup()

    assert report.listing_problem == "the endpoint refused to list its models (HTTP 403)"


# --- later checks ------------------------------------------------------------------------------


async def test_the_report_is_refreshed_once_a_day(lister, fake_openai):
    now = [NOW]
    lifecycle = LifecycleService(lister, Catalog.load(), ("gpt-4.1-nano",), clock=lambda: now[0])
    await lifecycle.startup()
    fake_openai.models["gpt-4.1-nano"] = "2026-12-10"

    assert (await lifecycle.report()).models[0].shutdown_date is None
    now[0] += timedelta(days=1)
    assert (await lifecycle.report()).models[0].shutdown_date == date(2026, 12, 10)


async def test_run_daily_refreshes_after_each_day(lister, fake_openai):
    lifecycle = service(lister, "gpt-4.1-nano")
    await lifecycle.startup()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            fake_openai.models["gpt-4.1-nano"] = "2026-12-01"
        if len(slept) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await lifecycle.run_daily(sleep)

    assert slept == [86400.0] * 3
    assert (await lifecycle.report()).models[0].shutdown_date == date(2026, 12, 1)


async def test_warnings_include_models_the_router_found_unavailable(lister):
    class Health:
        async def model_health(self) -> list[ModelHealth]:
            until = NOW + timedelta(hours=24)
            return [
                ModelHealth("gpt-4.1-nano", "unavailable", "is unavailable (retired, or no access)", until),
                ModelHealth("gpt-4o-mini", "healthy"),
            ]

    lifecycle = service(lister, "gpt-4.1-nano", "gpt-4o-mini", health=Health())
    await lifecycle.startup()

    assert await lifecycle.lifecycle_warnings() == [
        "gpt-4.1-nano is unavailable (retired, or no access); Frugal skips it until 2026-11-26 12:00 UTC, "
        "then tries it again."
    ]
    overview = await lifecycle.overview()
    assert [(row.position, row.lifecycle.model, row.health.state) for row in overview.rows] == [
        (0, "gpt-4.1-nano", "unavailable"),
        (1, "gpt-4o-mini", "healthy"),
    ]


# --- the baseline ------------------------------------------------------------------------------


def test_the_baseline_defaults_to_the_catalogs_and_accepts_aliases():
    catalog = Catalog.load()

    assert resolve_baseline(catalog, None) == "gpt-4o"
    assert resolve_baseline(catalog, "4.1") == "gpt-4.1"
    with pytest.raises(ConfigError, match="FRUGAL_BASELINE_MODEL: unknown model 'gpt-4oo' — did you mean 'gpt-4o'"):
        resolve_baseline(catalog, "gpt-4oo")


# --- `frugal run` ------------------------------------------------------------------------------


def test_frugal_run_refuses_to_start_with_a_misspelled_model(tmp_path, fake_openai, fake_slack):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake_openai.api_url, FRUGAL_MODELS="gpt_4_1_nano,gpt-4o-mini",
        DATABASE_URL=f"sqlite:///{tmp_path / 'frugal.db'}", PORT=_closed_port_url().rsplit(":", 1)[1].split("/")[0],
    )

    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "frugal: FRUGAL_MODELS: unknown model 'gpt_4_1_nano' — did you mean 'gpt-4.1-nano'?"
    )
    assert "Traceback" not in result.stderr
