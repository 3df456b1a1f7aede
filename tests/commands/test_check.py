"""`frugal check` against the fakes: the table, the fixes, and an exit code of 0 only when all is well."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.catalog.pricing import LIBRARY
from bot.commands.check import run_check
from bot.config import DEFAULT_MODELS, normalize_database_url
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.migrate import upgrade
from bot.infra.db.model_status import SqlModelStatusStore
from bot.ports.model_status import UnavailableModel
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import Fail

TODAY = date(2026, 12, 3)


# These tests are about what check says of a chain, not about the default chain.
CHAIN = "gpt-4.1-nano,gpt-4o-mini"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}


def _env(database_url: str, fake_openai, fake_slack, **extra: str) -> dict[str, str]:
    env = _clean_env()
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.api_url,
        DATABASE_URL=database_url,
        FRUGAL_MODELS=CHAIN,
    )
    env.update(extra)
    return env


def _frugal_check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _row(output: str, subject: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(subject)]
    return line


async def _check(make_settings, database_url: str, **env: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_check(make_settings(database_url, **{"FRUGAL_MODELS": CHAIN, **env}), out)
    return code, out.getvalue()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- the command as operators run it -----------------------------------------------------------


def test_all_is_well_exits_0_with_the_table(migrated_url, fake_openai, fake_slack, tmp_path):
    result = _frugal_check(_env(migrated_url, fake_openai, fake_slack), tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert "ok" in _row(out, "database") and "migrations applied" in _row(out, "database")
    assert "auth.test: workspace" in _row(out, "slack")
    assert "lists 5 models" in _row(out, "openai")
    # The gateway lists gpt-4.1-nano without a date: served, past OpenAI's own date.
    primary = _row(out, "model gpt-4.1-nano (primary)")
    assert (
        " ok " in primary
        and f"listed · no shutdown date announced · $0.10 in / $0.40 out per 1M tokens ({LIBRARY})" in primary
    )
    assert LIBRARY.startswith("genai-prices ")
    assert " ok " in _row(out, "model gpt-4o-mini (fallback 1)")
    assert "gpt-6-sol: savings are measured against it" in _row(out, "baseline model")
    assert out.rstrip().endswith("All is well.")
    [auth] = fake_slack.calls_to("auth.test")
    assert auth.token == BOT_TOKEN


def test_a_misspelled_model_fails_with_the_fix(migrated_url, fake_openai, fake_slack, tmp_path):
    env = _env(migrated_url, fake_openai, fake_slack, FRUGAL_MODELS="gpt4.1nano,gpt-4o-mini")

    result = _frugal_check(env, tmp_path)

    assert result.returncode == 1
    row = _row(result.stdout, "model gpt4.1nano (primary)")
    assert "FAIL" in row and "unknown model 'gpt4.1nano' — did you mean 'gpt-4.1-nano'?" in row
    assert "model gpt4.1nano (primary): set FRUGAL_MODELS=gpt-4.1-nano,gpt-4o-mini" in result.stdout
    assert result.stdout.rstrip().endswith("1 problem(s), 0 warning(s).")
    assert "Traceback" not in result.stderr


# --- each problem, with its fix ----------------------------------------------------------------


async def test_a_bad_slack_token_fails(make_settings, migrated_url, fake_slack):
    fake_slack.responses["auth.test"] = {"ok": False, "error": "invalid_auth"}

    code, out = await _check(make_settings, migrated_url)

    assert code == 1
    assert "FAIL" in _row(out, "slack") and "auth.test: invalid_auth" in _row(out, "slack")
    assert "slack: set SLACK_BOT_TOKEN to the Bot User OAuth Token" in out


async def test_pending_migrations_are_a_warning_that_fails_the_check(make_settings, database_url):
    await upgrade(database_url, "0001")

    code, out = await _check(make_settings, database_url)

    assert code == 1
    assert "WARN" in _row(out, "database") and "migration(s) pending" in _row(out, "database")
    assert "database: run `frugal migrate`" in out


async def test_an_unreachable_database_fails(make_settings, tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "frugal.db"

    code, out = await _check(make_settings, f"sqlite:///{missing}")

    assert code == 1
    assert "FAIL" in _row(out, "database") and "cannot connect" in _row(out, "database")
    assert "database: check DATABASE_URL" in out


async def test_a_database_server_that_refuses_the_connection_fails_naming_the_error(make_settings):
    port = _closed_port_url().rpartition(":")[2]

    code, out = await _check(make_settings, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/frugal")

    assert code == 1
    assert "FAIL" in _row(out, "database") and "cannot connect (ConnectionRefusedError)" in _row(out, "database")
    assert "database: check DATABASE_URL and that the database server is up" in out


async def test_a_database_that_does_not_exist_on_the_server_fails(make_settings):
    if not (base := os.environ.get("TEST_DATABASE_URL")):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    missing = normalize_database_url(base).rsplit("/", 1)[0] + "/frugal_no_such_database"

    code, out = await _check(make_settings, missing)

    # The server answered and refused: no traceback, the same line as for a server that is down.
    assert code == 1
    assert "FAIL" in _row(out, "database") and "cannot connect (DBAPIError)" in _row(out, "database")


async def test_a_shutdown_within_30_days_is_a_warning(make_settings, migrated_url, fake_openai):
    soon = (datetime.now(timezone.utc).date() + timedelta(days=12)).isoformat()
    fake_openai.models["gpt-4o-mini"] = soon

    code, out = await _check(make_settings, migrated_url)

    assert code == 1
    row = _row(out, "model gpt-4o-mini (fallback 1)")
    assert "WARN" in row and f"shuts down {soon} (in 12 days)" in row
    assert f"replace it in FRUGAL_MODELS (OpenAI's replacement: gpt-6-luna) before {soon}" in out


async def test_a_model_the_endpoint_no_longer_offers_fails(make_settings, migrated_url, fake_openai):
    # No past date anywhere: it is the endpoint's listing alone that retires it.
    del fake_openai.models["gpt-4o-mini"]
    fake_openai.models["gpt-6-luna"] = None  # the fix names only a replacement the endpoint offers

    code, out = await _check(make_settings, migrated_url)

    assert code == 1
    row = _row(out, "model gpt-4o-mini (fallback 1)")
    assert (
        "FAIL" in row and "retired: it is not offered by the endpoint (retired, or this API key has no access)" in row
    )
    assert "OpenAI's replacement is gpt-6-luna" in row and "not listed" in row
    assert "model gpt-4o-mini (fallback 1): set FRUGAL_MODELS=gpt-4.1-nano,gpt-6-luna" in out


async def test_an_explicitly_configured_retired_model_fails_with_its_date_replacement_and_fix(
    make_settings, migrated_url, fake_openai
):
    fake_openai.serve_like_openai(TODAY)

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODELS="gpt-4.1-nano,gpt-6-luna")

    assert code == 1
    row = _row(out, "model gpt-4.1-nano (primary)")
    assert " FAIL " in row
    assert (
        "retired: it was shut down on 2026-10-23, so Frugal skips it without a call; OpenAI's replacement is gpt-5.6-luna"
        in row
    )
    assert "model gpt-4.1-nano (primary): set FRUGAL_MODELS=gpt-5.6-luna,gpt-6-luna" in out
    assert " ok " in _row(out, "model gpt-6-luna (fallback 1)")
    assert out.rstrip().endswith("1 problem(s), 0 warning(s).")


def test_frugal_check_exits_1_for_a_retired_model_in_frugal_models(migrated_url, fake_openai, fake_slack, tmp_path):
    fake_openai.serve_like_openai(TODAY)
    env = _env(migrated_url, fake_openai, fake_slack, FRUGAL_MODELS="gpt-6-luna,gpt-4.1-nano")

    result = _frugal_check(env, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "was shut down on 2026-10-23" in _row(result.stdout, "model gpt-4.1-nano (fallback 1)")
    assert "model gpt-4.1-nano (fallback 1): set FRUGAL_MODELS=gpt-6-luna,gpt-5.6-luna" in result.stdout


async def test_the_default_chain_on_today_s_openai_notes_the_retired_nano_and_all_is_well(
    make_settings, migrated_url, fake_openai
):
    fake_openai.serve_like_openai(TODAY)
    out = io.StringIO()

    code = await run_check(make_settings(migrated_url, FRUGAL_MODELS=""), out)  # FRUGAL_MODELS unset: the default chain

    report = out.getvalue()
    assert code == 0, report
    primary = _row(report, "model gpt-4.1-nano (primary)")
    assert " note " in primary and "retired: it was shut down on 2026-10-23" in primary
    assert (
        "OpenAI's replacement is gpt-5.6-luna" in primary and "the default chain goes on to its successors" in primary
    )
    for position, model in enumerate(DEFAULT_MODELS.split(",")[1:], start=1):
        assert " ok " in _row(report, f"model {model} (fallback {position})")
    assert f"$0.10 in / $0.50 out per 1M tokens ({LIBRARY})" in _row(report, "model gpt-6-luna (fallback 1)")
    assert "How to fix:" not in report and report.rstrip().endswith("All is well.")


async def test_a_retired_model_later_in_the_default_chain_is_a_failure(make_settings, migrated_url, fake_openai):
    # Only the mission's model, first, is expected to be gone somewhere; a successor missing is a problem.
    fake_openai.serve_like_openai(TODAY)
    del fake_openai.catalogue["gpt-5.6-luna"]

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODELS=DEFAULT_MODELS)

    assert code == 1
    assert " note " in _row(out, "model gpt-4.1-nano (primary)")
    row = _row(out, "model gpt-5.6-luna (fallback 2)")
    assert " FAIL " in row and "is not offered by the endpoint" in row


async def test_a_model_marked_unavailable_by_the_router_is_a_warning(make_settings, migrated_url):
    engine = make_engine(migrated_url)
    now = datetime.now(timezone.utc)
    try:
        await SqlModelStatusStore(make_sessionmaker(engine)).mark_unavailable(
            UnavailableModel("gpt-4.1-nano", "model_not_found", now, now + timedelta(hours=24))
        )
    finally:
        await engine.dispose()

    code, out = await _check(make_settings, migrated_url)

    assert code == 1
    row = _row(out, "model gpt-4.1-nano (primary)")
    assert "WARN" in row and "marked unavailable (model_not_found) until" in row


async def test_a_model_without_a_price_is_a_warning(make_settings, migrated_url, fake_openai):
    fake_openai.models["local-llm"] = None

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODELS="gpt-4.1-nano,local-llm")

    assert code == 1
    row = _row(out, "model local-llm (fallback 1)")
    assert "WARN" in row and "price unknown" in row
    assert "add its price to the FRUGAL_MODEL_CATALOG file" in out


async def test_an_endpoint_without_v1_models_is_a_note_and_all_is_well(make_settings, migrated_url, fake_openai):
    fake_openai.models_endpoint_enabled = False

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODELS="gpt-6-luna,gpt-4o-mini")

    assert code == 0, out
    assert " note " in _row(out, "openai") and "no usable /v1/models (HTTP 404)" in _row(out, "openai")
    assert "listing unknown" in _row(out, "model gpt-6-luna (primary)")


async def test_without_a_model_list_the_catalog_s_shutdown_date_fails_a_retired_model(
    make_settings, migrated_url, fake_openai
):
    fake_openai.models_endpoint_enabled = False

    code, out = await _check(make_settings, migrated_url)

    assert code == 1
    row = _row(out, "model gpt-4.1-nano (primary)")
    assert " FAIL " in row and "listing unknown" in row and "was shut down on 2026-10-23" in row
    assert "model gpt-4.1-nano (primary): set FRUGAL_MODELS=gpt-5.6-luna,gpt-4o-mini" in out


async def test_an_unreachable_endpoint_fails(make_settings, migrated_url):
    code, out = await _check(make_settings, migrated_url, OPENAI_BASE_URL=_closed_port_url() + "/v1")

    assert code == 1
    assert "FAIL" in _row(out, "openai") and "could not be reached" in _row(out, "openai")
    assert "openai: check OPENAI_BASE_URL" in out


async def test_a_refused_key_fails(make_settings, migrated_url, fake_openai):
    fake_openai.models_failure = Fail(401, "invalid_api_key", "Incorrect API key provided")

    code, out = await _check(make_settings, migrated_url)

    assert code == 1
    assert "refused OPENAI_API_KEY (HTTP 401)" in _row(out, "openai")


async def test_missing_settings_are_named(make_settings, migrated_url):
    code, out = await _check(make_settings, migrated_url, SLACK_SIGNING_SECRET="")

    assert code == 1
    assert "FAIL" in _row(out, "configuration") and "SLACK_SIGNING_SECRET" in _row(out, "configuration")
    assert "configuration: copy it from the app's Basic Information → App Credentials → Signing Secret" in out


def test_a_copied_env_example_names_every_missing_setting_and_creates_nothing(tmp_path, fake_openai, fake_slack):
    (tmp_path / ".env").write_text((Path(__file__).resolve().parents[2] / ".env.example").read_text())
    env = _clean_env() | {"SLACK_API_URL": fake_slack.api_url, "OPENAI_BASE_URL": fake_openai.api_url}

    result = _frugal_check(env, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("configuration")]
    assert [row.split()[2].rstrip(":") for row in rows] == ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "OPENAI_API_KEY"]
    assert all(" FAIL " in row for row in rows)
    # The missing key is named as such: the endpoint is not blamed, not even asked.
    assert "OPENAI_API_KEY is not set" in _row(result.stdout, "openai")
    assert "openai: set OPENAI_API_KEY to your OpenAI API key" in result.stdout
    assert fake_openai.requests == [] and fake_slack.calls == []
    assert "WARN" in _row(result.stdout, "database") and "no database yet" in _row(result.stdout, "database")
    assert "database: run `frugal migrate` to create it" in result.stdout
    # Models are still checked, against the catalog alone.
    assert "listing unknown" in _row(result.stdout, "model gpt-4.1-nano (primary)")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_a_wrong_value_stops_check_with_every_problem_and_touches_no_database(tmp_path):
    env = _clean_env() | {
        "PORT": "eighty",
        "SLACK_BOT_TOKEN": "xoxp-user",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'frugal.db'}",
    }

    result = _frugal_check(env, tmp_path)

    assert result.returncode == 2
    variables = [line.split(":")[1].strip() for line in result.stderr.strip().splitlines()]
    assert variables == ["SLACK_BOT_TOKEN", "PORT", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY"]
    assert list(tmp_path.iterdir()) == []


async def test_a_missing_sqlite_file_is_not_created(make_settings, tmp_path):
    database = tmp_path / "frugal.db"

    code, out = await _check(make_settings, f"sqlite:///{database}")

    assert code == 1
    assert "WARN" in _row(out, "database") and "no database yet" in _row(out, "database")
    assert list(tmp_path.iterdir()) == []


async def test_the_app_token_is_checked_with_apps_connections_open(make_settings, migrated_url, fake_slack):
    _, out = await _check(make_settings, migrated_url, SLACK_APP_TOKEN="xapp-1-A1-1-good")

    assert " ok " in _row(out, "slack app token") and "apps.connections.open" in _row(out, "slack app token")
    assert "slack app token:" not in out
    [opened] = fake_slack.calls_to("apps.connections.open")
    assert opened.token == "xapp-1-A1-1-good"

    fake_slack.fail("apps.connections.open", status=200, headers={}, body={"ok": False, "error": "invalid_auth"})
    code, out = await _check(make_settings, migrated_url, SLACK_APP_TOKEN="xapp-1-A1-1-bad")

    assert code == 1
    assert "FAIL" in _row(out, "slack app token") and "apps.connections.open: invalid_auth" in _row(
        out, "slack app token"
    )
    assert "slack app token: set SLACK_APP_TOKEN to an app-level token (xapp-…) with the connections:write scope" in out


async def test_a_bad_catalog_override_fails(make_settings, migrated_url, tmp_path):
    override = tmp_path / "catalog.json"
    override.write_text(
        '{"models": [{"id": "gpt-4.1-nano", "price": {"input": "free", "cached_input": "0.025", "output": "0.4"}}]}'
    )

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODEL_CATALOG=str(override))

    assert code == 1
    assert "FAIL" in _row(out, "model catalog") and "price.input" in _row(out, "model catalog")


async def test_a_catalog_price_override_needs_input_cached_input_and_output(make_settings, migrated_url, tmp_path):
    # The catalog holds no prices of its own any more: an override gives the whole price.
    override = tmp_path / "catalog.json"
    override.write_text('{"models": [{"id": "gpt-4.1-nano", "price": {"input": "0.1", "output": "0.4"}}]}')

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODEL_CATALOG=str(override))

    assert code == 1
    assert "FAIL" in _row(out, "model catalog") and "models[0].price: missing 'cached_input'" in _row(
        out, "model catalog"
    )


async def test_a_catalog_price_override_is_shown_as_the_catalog_s(make_settings, migrated_url, tmp_path):
    override = tmp_path / "catalog.json"
    override.write_text(
        '{"models": [{"id": "gpt-4.1-nano", "price": {"input": "0.2", "cached_input": "0.05", "output": "0.8"}}]}'
    )

    code, out = await _check(make_settings, migrated_url, FRUGAL_MODEL_CATALOG=str(override))

    assert code == 0, out
    assert "$0.20 in / $0.80 out per 1M tokens (the model catalog)" in _row(out, "model gpt-4.1-nano (primary)")


@pytest.mark.parametrize("baseline", ["gpt-4oo"])
async def test_an_unknown_baseline_fails_with_did_you_mean(make_settings, migrated_url, baseline):
    code, out = await _check(make_settings, migrated_url, FRUGAL_BASELINE_MODEL=baseline)

    assert code == 1
    assert "did you mean 'gpt-4o'" in _row(out, "baseline model")


async def test_an_explicit_baseline_priced_by_genai_prices_is_ok(make_settings, migrated_url):
    code, out = await _check(make_settings, migrated_url, FRUGAL_BASELINE_MODEL="gpt-6-sol")

    assert " ok " in _row(out, "baseline model"), out


def test_the_report_fits_80_columns_with_long_details_wrapped_in_their_column():
    from bot.commands.check import FAIL, OK, Finding, render

    findings = [
        Finding("configuration", OK, "HTTP mode"),
        Finding(
            "model gpt-4.1-nano", FAIL, "retired on 2026-10-23; " + "replaced by gpt-6-luna " * 6, "set FRUGAL_MODELS"
        ),
    ]
    text = render(findings, width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    detail_column = lines[0].index("DETAIL")
    wrapped = [line for line in lines[3:] if line.strip() and not line.startswith(("How", "  model", "1 problem"))]
    assert wrapped and all(line[:detail_column].strip() == "" for line in wrapped), text
    assert "\x1b[" not in text


def test_the_report_written_to_a_file_is_plain_and_unwrapped(tmp_path):
    from bot.commands.check import WARN, Finding, print_report

    long_detail = "shuts down on 2027-01-14 " * 10
    with open(tmp_path / "report.txt", "w") as out:
        print_report([Finding("model gpt-4o-mini", WARN, long_detail.strip())], out)
    text = (tmp_path / "report.txt").read_text()
    assert "\x1b[" not in text
    [row] = [line for line in text.splitlines() if line.startswith("model")]
    assert row.endswith(long_detail.strip())
