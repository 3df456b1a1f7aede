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
from bot.config import DEFAULT_MODELS, ConfigError
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.chat import RemoteModel
from bot.ports.model_status import ModelHealth, RetiredModels
from bot.services.lifecycle import LifecycleService, check_model_ids, list_remote_models, resolve_baseline
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import Fail

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
# The day OpenAI's listing is served as in tests/fakes/openai_models.py: gpt-4.1-nano is gone.
DEC_3 = date(2026, 12, 3)
DEC_3_NOON = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


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
        (
            10,
            "gpt-4o-mini shuts down on 2026-12-05 (in 10 days); replace it in FRUGAL_MODELS (OpenAI's replacement: gpt-6-luna) before then.",
        ),
        (
            30,
            "gpt-4o-mini shuts down on 2026-12-25 (in 30 days); replace it in FRUGAL_MODELS (OpenAI's replacement: gpt-6-luna) before then.",
        ),
        (
            1,
            "gpt-4o-mini shuts down on 2026-11-26 (tomorrow); replace it in FRUGAL_MODELS (OpenAI's replacement: gpt-6-luna) before then.",
        ),
        (31, None),
    ],
)
async def test_a_shutdown_within_30_days_is_a_warning(lister, fake_openai, caplog, days, warning):
    # The endpoint's date counts (here earlier than the catalog's 2027-01-14).
    fake_openai.models["gpt-4o-mini"] = (TODAY + timedelta(days=days)).isoformat()

    with caplog.at_level(logging.WARNING, logger="bot.services.lifecycle"):
        report = await service(lister, "gpt-4o-mini", "gpt-4.1").startup()

    assert report.models[0].shutdown_date == TODAY + timedelta(days=days)
    assert report.models[0].retired is None
    assert report.warnings() == ([warning] if warning else [])
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ([f"model lifecycle: {warning}"] if warning else [])


async def test_a_near_shutdown_without_a_known_replacement_names_none(lister, fake_openai):
    fake_openai.models["gpt-6-luna"] = (TODAY + timedelta(days=10)).isoformat()

    report = await service(lister, "gpt-6-luna").startup()

    assert report.warnings() == [
        "gpt-6-luna shuts down on 2026-12-05 (in 10 days); replace it in FRUGAL_MODELS before then."
    ]


async def test_past_shutdowns_and_unlisted_models_are_retired_with_the_fix_but_do_not_stop_the_start(
    lister, fake_openai
):
    del fake_openai.models["gpt-4.1-nano"]  # not listed, and past the catalog's date: shut down
    fake_openai.models["gpt-4o-mini"] = "2026-11-01"  # listed, with a past date: shut down
    fake_openai.models.update({"gpt-6-luna": None, "gpt-5.6-luna": None})  # gpt-5.4-nano stays unlisted
    retired = RetiredModels()
    lifecycle = LifecycleService(
        lister,
        Catalog.load(),
        ("gpt-4.1-nano", "gpt-4o-mini", "gpt-5.4-nano", "gpt-4.1"),
        clock=lambda: NOW,
        retired=retired,
    )

    report = await lifecycle.startup()

    fix = "Fix: set FRUGAL_MODELS=gpt-5.6-luna,gpt-6-luna,gpt-4.1"
    assert report.warnings() == [
        f"gpt-4.1-nano was shut down on 2026-10-23; Frugal skips it without calling it. OpenAI's replacement: gpt-5.6-luna. {fix}",
        f"gpt-4o-mini was shut down on 2026-11-01; Frugal skips it without calling it. OpenAI's replacement: gpt-6-luna. {fix}",
        "gpt-5.4-nano is not offered by the endpoint (retired, or this API key has no access); "
        f"Frugal skips it without calling it. {fix}",
    ]
    assert [(r.model, r.shutdown_date, r.replacement) for r in report.retirements()] == [
        ("gpt-4.1-nano", date(2026, 10, 23), "gpt-5.6-luna"),
        ("gpt-4o-mini", date(2026, 11, 1), "gpt-6-luna"),
        ("gpt-5.4-nano", None, None),
    ]
    # What the router reads to skip them without a call.
    assert [r.model for r in retired.all()] == ["gpt-4.1-nano", "gpt-4o-mini", "gpt-5.4-nano"]
    assert retired.get("gpt-4.1") is None


async def test_a_model_listed_with_today_as_its_shutdown_date_is_retired(lister, fake_openai):
    fake_openai.models["gpt-4o-mini"] = TODAY.isoformat()

    [model] = (await service(lister, "gpt-4o-mini").startup()).models

    assert model.retired is not None and model.retired.why == "was shut down on 2026-11-25"


async def test_a_model_listed_without_a_date_is_served_past_openai_s_date(lister, fake_openai):
    # Azure, gateways and dedicated capacity keep models past OpenAI's date: the endpoint decides.
    fake_openai.models["gpt-4.1-nano"] = None

    report = await service(lister, "gpt-4.1-nano").startup()

    [model] = report.models
    assert (model.listed, model.shutdown_date, model.retired) == (True, None, None)
    assert report.retirements() == () and report.fixed_chain() is None and report.warnings() == []


async def test_on_today_s_openai_only_the_retired_nano_is_retired(lister, fake_openai):
    fake_openai.serve_like_openai(DEC_3)
    lifecycle = LifecycleService(lister, Catalog.load(), tuple(DEFAULT_MODELS.split(",")), clock=lambda: DEC_3_NOON)

    report = await lifecycle.startup()

    assert [(m.model, m.listed, m.retired is not None) for m in report.models] == [
        ("gpt-4.1-nano", False, True),
        ("gpt-6-luna", True, False),
        ("gpt-5.6-luna", True, False),
        ("gpt-5.4-nano", True, False),
    ]
    nano = report.models[0]
    assert (nano.retired.why, nano.replacement) == ("was shut down on 2026-10-23", "gpt-5.6-luna")


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

    report = await service(lister, "gpt-6-luna", "gpt-4o-mini").startup()

    assert report.listing_problem == "the endpoint has no usable /v1/models (HTTP 404)"
    assert [m.listed for m in report.models] == [None, None]
    assert report.warnings() == []


async def test_without_a_model_list_the_catalog_s_date_retires_a_model(lister, fake_openai):
    fake_openai.models_endpoint_enabled = False

    report = await service(lister, "gpt-4.1-nano", "gpt-4o-mini").startup()

    nano, mini = report.models
    assert (nano.listed, nano.shutdown_date, nano.retired.why) == (
        None,
        date(2026, 10, 23),
        "was shut down on 2026-10-23",
    )
    assert mini.retired is None
    assert report.warnings() == [
        "gpt-4.1-nano was shut down on 2026-10-23; Frugal skips it without calling it. "
        "OpenAI's replacement: gpt-5.6-luna. Fix: set FRUGAL_MODELS=gpt-5.6-luna,gpt-4o-mini"
    ]


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


class RecordedAlerts:
    """AdminAlerts that keeps what it was told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, str, str | None]] = []

    async def alert(self, team_id: str | None, text: str, *, dedupe_key: str | None = None) -> None:
        self.sent.append((team_id, text, dedupe_key))


async def test_a_retired_model_is_announced_to_the_admins_once_with_the_fix(lister, fake_openai):
    fake_openai.models["gpt-4o-mini"] = "2026-11-01"
    fake_openai.models["gpt-6-luna"] = None  # the fix names only a replacement the endpoint offers
    alerts = RecordedAlerts()
    lifecycle = LifecycleService(lister, Catalog.load(), ("gpt-4o-mini", "gpt-4.1"), clock=lambda: NOW, alerts=alerts)

    await lifecycle.startup()
    await lifecycle.refresh()
    await lifecycle.refresh()

    assert alerts.sent == [
        (
            None,
            "gpt-4o-mini was shut down on 2026-11-01; Frugal skips it without calling it. "
            "OpenAI's replacement: gpt-6-luna. Fix: set FRUGAL_MODELS=gpt-6-luna,gpt-4.1",
            "retired:gpt-4o-mini",
        )
    ]

    # A model that retires later is announced in its turn; the first is not repeated.
    fake_openai.models["gpt-4.1"] = "2026-11-20"
    await lifecycle.refresh()

    assert [key for _, _, key in alerts.sent] == ["retired:gpt-4o-mini", "retired:gpt-4.1"]


async def test_a_chain_without_retired_models_announces_nothing(lister, fake_openai):
    fake_openai.models["gpt-4o-mini"] = (TODAY + timedelta(days=10)).isoformat()  # near, not past
    alerts = RecordedAlerts()
    lifecycle = LifecycleService(lister, Catalog.load(), ("gpt-4o-mini", "gpt-4.1"), clock=lambda: NOW, alerts=alerts)

    await lifecycle.startup()

    assert alerts.sent == []


async def test_the_admins_get_one_dm_each_for_a_retired_model(start_frugal, migrated_url, fake_openai, fake_slack):
    fake_openai.serve_like_openai(DEC_3)
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN,UOPS", FRUGAL_MODELS="gpt-4.1-nano,gpt-6-luna")

    await frugal.container.lifecycle.startup()
    await frugal.container.lifecycle.refresh()
    await frugal.container.alerts.aclose()  # every DM sent

    dms = fake_slack.calls_to("chat.postMessage")
    assert sorted(dm.params["channel"] for dm in dms) == ["UADMIN", "UOPS"]
    assert {dm.params["text"] for dm in dms} == {
        ":warning: *Frugal needs an admin:* gpt-4.1-nano was shut down on 2026-10-23; Frugal skips it without "
        "calling it. OpenAI's replacement: gpt-5.6-luna. Fix: set FRUGAL_MODELS=gpt-5.6-luna,gpt-6-luna"
    }


# --- /frugal models retry, the service side ------------------------------------------------------


class Marks:
    """A ModelHealthReader whose marks the test sets."""

    def __init__(self, *marked: str) -> None:
        self.marked = set(marked)
        self.cleared: list[str] = []

    async def model_health(self) -> list[ModelHealth]:
        return [ModelHealth(m, "unavailable", "is unavailable (retired, or no access)") for m in sorted(self.marked)]

    async def clear_mark(self, model: str) -> bool:
        self.cleared.append(model)
        had = model in self.marked
        self.marked.discard(model)
        return had


async def test_retry_clears_a_mark_of_a_model_in_the_chain_by_any_of_its_names(lister):
    marks = Marks("gpt-4o-mini")
    lifecycle = service(lister, "gpt-4.1", "gpt-4o-mini", health=marks)

    assert (
        await lifecycle.retry("gpt-4o-mini-2024-07-18")
        == "gpt-4o-mini's mark is cleared: the next request tries it again."
    )
    assert await lifecycle.retry("gpt-4o-mini") == "gpt-4o-mini was not marked unavailable; nothing to clear."
    assert marks.cleared == ["gpt-4o-mini", "gpt-4o-mini"]


async def test_retry_of_a_retired_model_or_one_outside_the_chain_clears_nothing(lister, fake_openai):
    fake_openai.models["gpt-4o-mini"] = "2026-11-01"
    marks = Marks("gpt-4o-mini")
    lifecycle = service(lister, "gpt-4o-mini", "gpt-4.1", health=marks)

    assert await lifecycle.retry("gpt-4o-mini") == (
        "gpt-4o-mini was shut down on 2026-11-01: Frugal skips it until the endpoint lists it again "
        "(checked daily); there is no mark to clear."
    )
    with pytest.raises(ValueError) as refused:
        await lifecycle.retry("gpt-4o")
    assert str(refused.value) == "'gpt-4o' is not in the model chain (gpt-4o-mini, gpt-4.1)."
    assert marks.cleared == []


# --- the baseline ------------------------------------------------------------------------------


def test_the_baseline_defaults_to_the_catalogs_and_accepts_aliases():
    catalog = Catalog.load()

    # A current model: the old baseline, gpt-4o, shuts down on 2027-01-14.
    assert resolve_baseline(catalog, None) == "gpt-6-sol"
    with pytest.raises(
        ConfigError, match="FRUGAL_BASELINE_MODEL: unknown model 'gpt-6-soll' — did you mean 'gpt-6-sol'"
    ):
        resolve_baseline(catalog, "gpt-6-soll")


def test_a_baseline_without_any_price_is_refused(tmp_path):
    override = tmp_path / "catalog.json"
    override.write_text('{"models": [{"id": "house-model", "context_window": 8192}]}')

    with pytest.raises(ConfigError, match="FRUGAL_BASELINE_MODEL: 'house-model' has no known price to compare with"):
        resolve_baseline(Catalog.load(override), "house-model")


def test_a_baseline_priced_by_genai_prices_is_accepted_by_any_of_its_names():
    catalog = Catalog.load()

    assert resolve_baseline(catalog, "6-sol") == "gpt-6-sol"
    assert resolve_baseline(catalog, "4.1") == "gpt-4.1"


# --- `frugal run` ------------------------------------------------------------------------------


def test_frugal_run_refuses_to_start_with_a_misspelled_model(tmp_path, fake_openai, fake_slack):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.api_url,
        FRUGAL_MODELS="gpt_4_1_nano,gpt-4o-mini",
        DATABASE_URL=f"sqlite:///{tmp_path / 'frugal.db'}",
        PORT=_closed_port_url().rsplit(":", 1)[1].split("/")[0],
    )

    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "frugal: FRUGAL_MODELS: unknown model 'gpt_4_1_nano' — did you mean 'gpt-4.1-nano'?"
    )
    assert "Traceback" not in result.stderr
