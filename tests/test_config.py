"""Settings: every variable validated, one clear line naming the variable when wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import (
    ConfigError,
    diagnose_settings,
    load_serving_settings,
    load_settings,
    normalize_database_url,
)


def load(**env: str):
    return load_settings(env, dotenv_path=None)


def test_defaults_follow_the_contract():
    settings = load()
    assert settings.models == ("gpt-4.1-nano", "gpt-6-luna", "gpt-5.6-luna", "gpt-5.4-nano")
    assert settings.database_url == "sqlite+aiosqlite:///frugal.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert str(settings.timezone) == "UTC"
    assert settings.admins == frozenset()
    assert not settings.oauth_enabled
    assert settings.shutdown_grace == 25
    assert settings.classify_service_tier == "default"
    assert settings.openai_org_id is None and settings.openai_project_id is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app?sslmode=require", "postgresql+asyncpg://u@db/app?ssl=require"),
        ("sqlite:////var/frugal.db", "sqlite+aiosqlite:////var/frugal.db"),
    ],
)
def test_database_urls_are_mapped_onto_async_drivers(url, expected):
    assert normalize_database_url(url) == expected


def test_slack_api_url_gets_its_trailing_slash():
    assert load(SLACK_API_URL="http://127.0.0.1:9/api").slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"FRUGAL_TIMEZONE": "Mars/Olympus"}, "FRUGAL_TIMEZONE"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "frugal.db"}, "DATABASE_URL"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"),
        ({"FRUGAL_MODELS": " , "}, "FRUGAL_MODELS"),
        ({"FRUGAL_MODELS": "gpt-4.1-nano,gpt-4.1-nano"}, "FRUGAL_MODELS"),
        ({"FRUGAL_ADMINS": "U1,bob"}, "FRUGAL_ADMINS"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"SLACK_CLIENT_ID": "123.456"}, "SLACK_CLIENT_SECRET"),
        ({"FRUGAL_MAX_INPUT_CHARS": "5000"}, "FRUGAL_MAX_INPUT_CHARS"),
        ({"FRUGAL_MODEL_TIMEOUT": "0"}, "FRUGAL_MODEL_TIMEOUT"),
        ({"FRUGAL_MODEL_CATALOG": "/nonexistent/models.json"}, "FRUGAL_MODEL_CATALOG"),
        ({"FRUGAL_SHUTDOWN_GRACE": "0"}, "FRUGAL_SHUTDOWN_GRACE"),
        ({"FRUGAL_SHUTDOWN_GRACE": "soon"}, "FRUGAL_SHUTDOWN_GRACE"),
        ({"FRUGAL_CLASSIFY_SERVICE_TIER": "priority"}, "FRUGAL_CLASSIFY_SERVICE_TIER"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(env, variable):
    with pytest.raises(ConfigError) as err:
        load(**env)
    message = str(err.value)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


def test_every_wrong_value_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load(PORT="eighty", FRUGAL_TIMEZONE="Mars/Olympus", SLACK_BOT_TOKEN="xoxp-user", FRUGAL_SHUTDOWN_GRACE="-1")

    assert [p.split(":")[0] for p in err.value.problems] == [
        "SLACK_BOT_TOKEN",
        "FRUGAL_TIMEZONE",
        "PORT",
        "FRUGAL_SHUTDOWN_GRACE",
    ]
    assert str(err.value).splitlines() == list(err.value.problems)


def test_serving_with_nothing_set_names_every_missing_variable_with_its_fix():
    with pytest.raises(ConfigError) as err:
        load_serving_settings({}, dotenv_path=None, socket_mode=False)

    problems = err.value.problems
    assert [p.split(":")[0] for p in problems] == ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "OPENAI_API_KEY"]
    assert "Signing Secret" in problems[0]
    assert "Bot User OAuth Token" in problems[1]
    assert "OpenAI API key" in problems[2]


def test_wrong_and_missing_settings_come_together():
    with pytest.raises(ConfigError) as err:
        load_serving_settings(
            {"FRUGAL_TIMEZONE": "Nowhere", "SLACK_APP_TOKEN": "xoxb-1"}, dotenv_path=None, socket_mode=True
        )

    # A wrong SLACK_APP_TOKEN is reported as wrong, not as missing too.
    assert [p.split(":")[0] for p in err.value.problems] == [
        "SLACK_APP_TOKEN",
        "FRUGAL_TIMEZONE",
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
    ]


def test_diagnose_gives_the_settings_with_what_serving_lacks():
    settings, problems = diagnose_settings({"SLACK_BOT_TOKEN": "xoxb-1"}, dotenv_path=None, serving=True)

    assert settings is not None and settings.slack_bot_token == "xoxb-1"
    assert [p.split(":")[0] for p in problems] == ["SLACK_SIGNING_SECRET", "OPENAI_API_KEY"]
    # Socket Mode is what SLACK_APP_TOKEN being set says it is.
    _, problems = diagnose_settings({"SLACK_APP_TOKEN": "xapp-1"}, dotenv_path=None, serving=True)
    assert [p.split(":")[0] for p in problems] == ["SLACK_BOT_TOKEN", "OPENAI_API_KEY"]
    settings, problems = diagnose_settings({"PORT": "x"}, dotenv_path=None)
    assert settings is None and [p.split(":")[0] for p in problems] == ["PORT"]


def test_shutdown_grace_service_tier_and_openai_ids_are_read(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("OPENAI_ORG_ID=org-frugal\nOPENAI_PROJECT_ID=proj-frugal\n")
    settings = load_settings(
        {"FRUGAL_SHUTDOWN_GRACE": "7.5", "FRUGAL_CLASSIFY_SERVICE_TIER": "Flex"}, dotenv_path=dotenv
    )
    assert settings.shutdown_grace == 7.5
    assert settings.classify_service_tier == "flex"
    assert (settings.openai_org_id, settings.openai_project_id) == ("org-frugal", "proj-frugal")


def test_an_empty_oauth_variable_in_the_environment_is_refused():
    # Bolt would see SLACK_CLIENT_ID="" as set and turn OAuth on, while Frugal serves one workspace.
    with pytest.raises(ConfigError) as err:
        load(SLACK_CLIENT_ID="", SLACK_CLIENT_SECRET=" ")
    assert [p.split(":")[0] for p in err.value.problems] == ["SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"]
    assert "set but empty in the environment" in err.value.problems[0]


def test_serving_needs_the_secrets():
    with pytest.raises(ConfigError, match="^SLACK_SIGNING_SECRET:"):
        load(SLACK_BOT_TOKEN="xoxb-1", OPENAI_API_KEY="k").require_serving(socket_mode=False)
    with pytest.raises(ConfigError, match="^SLACK_BOT_TOKEN:"):
        load(SLACK_SIGNING_SECRET="s", OPENAI_API_KEY="k").require_serving(socket_mode=False)
    with pytest.raises(ConfigError, match="^SLACK_APP_TOKEN:"):
        load(SLACK_BOT_TOKEN="xoxb-1", OPENAI_API_KEY="k").require_serving(socket_mode=True)
    with pytest.raises(ConfigError, match="^OPENAI_API_KEY:"):
        load(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s").require_serving(socket_mode=False)
    with pytest.raises(ConfigError) as both:
        load().require_serving(socket_mode=False)
    assert [p.split(":")[0] for p in both.value.problems] == [
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
    ]
    oauth = load(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="c", SLACK_SIGNING_SECRET="s", OPENAI_API_KEY="k")
    oauth.require_serving(socket_mode=False)
    assert oauth.oauth_enabled


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("FRUGAL_MODELS=gpt-4.1-mini\nPORT=4000\n")
    settings = load_settings({"PORT": "5000"}, dotenv_path=dotenv)
    assert settings.models == ("gpt-4.1-mini",)
    assert settings.port == 5000


# --- .env.example: every variable, with the default the code really has ----------------------------

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"


def _example() -> dict[str, str]:
    entries: dict[str, str] = {}
    lines = (ROOT / ".env.example").read_text().splitlines()
    for before, line in zip(["", *lines], lines, strict=False):
        if match := re.fullmatch(r"#? ?([A-Z][A-Z0-9_]+)=(.*)", line):
            name, value = match.groups()
            assert name not in entries, f"{name} is listed twice"
            assert before.startswith("# ") and "=" not in before.split()[1], f"{name} has no line saying what it is"
            entries[name] = value
    return entries


def _table_variables(markdown: str) -> dict[str, str]:
    """The environment table of a markdown file: each backticked variable and its default column."""
    section = markdown.split("## Environment", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                rows[name] = cells[1]
    return rows


def _variables_config_reads() -> set[str]:
    source = (ROOT / "bot" / "config.py").read_text()
    return set(re.findall(r'(?:get|parse|present)\("([A-Z][A-Z0-9_]+)"', source))


def test_env_example_lists_every_variable_the_code_and_the_readme_know():
    listed = set(_example())
    readme = set(_table_variables((ROOT / "README.md").read_text()))
    assert _variables_config_reads() - listed == set()
    assert readme - listed == set()
    assert listed - readme - _variables_config_reads() == set(), "listed but neither read nor documented"


@pytest.mark.skipif(not CONTRACT.is_file(), reason="the contract lives beside the checkout, not in it")
def test_env_example_lists_every_variable_of_the_contract():
    assert set(_table_variables(CONTRACT.read_text())) - set(_example()) == set()


def test_env_example_defaults_are_the_real_defaults():
    defaults = {name: value for name, value in _example().items() if value}
    assert {"DATABASE_URL", "FRUGAL_MODELS", "PORT", "FRUGAL_SHUTDOWN_GRACE"} <= set(defaults)
    for name, value in defaults.items():
        # Uncommenting a default line changes nothing.
        assert load(**{name: value}) == load(), name
    readme = _table_variables((ROOT / "README.md").read_text())
    for name, value in defaults.items():
        documented = readme[name].strip("`")
        if readme[name].startswith("`"):
            assert documented == value, f"README says {name} defaults to {documented}, .env.example says {value}"


def test_env_example_as_a_dotenv_file_asks_only_for_what_is_missing(tmp_path):
    # A copied .env.example is valid as it stands; serving then names exactly the values to fill in.
    settings, problems = diagnose_settings({}, dotenv_path=ROOT / ".env.example", serving=True)

    assert settings == load()
    assert [p.split(":")[0] for p in problems] == ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "OPENAI_API_KEY"]
