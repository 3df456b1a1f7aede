"""Settings: every variable validated, one clear line naming the variable when wrong."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings, normalize_database_url


def load(**env: str):
    return load_settings(env, dotenv_path=None)


def test_defaults_follow_the_contract():
    settings = load()
    assert settings.models == ("gpt-4.1-nano", "gpt-4o-mini")
    assert settings.database_url == "sqlite+aiosqlite:///frugal.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert str(settings.timezone) == "UTC"
    assert settings.admins == frozenset()
    assert not settings.oauth_enabled


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
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(env, variable):
    with pytest.raises(ConfigError) as err:
        load(**env)
    message = str(err.value)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


def test_serving_needs_the_secrets():
    with pytest.raises(ConfigError, match="^SLACK_SIGNING_SECRET:"):
        load(SLACK_BOT_TOKEN="xoxb-1", OPENAI_API_KEY="k").require_serving(socket_mode=False)
    with pytest.raises(ConfigError, match="^SLACK_BOT_TOKEN:"):
        load(SLACK_SIGNING_SECRET="s", OPENAI_API_KEY="k").require_serving(socket_mode=False)
    with pytest.raises(ConfigError, match="^SLACK_APP_TOKEN:"):
        load(SLACK_BOT_TOKEN="xoxb-1", OPENAI_API_KEY="k").require_serving(socket_mode=True)
    with pytest.raises(ConfigError, match="^OPENAI_API_KEY:"):
        load(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s").require_serving(socket_mode=False)
    oauth = load(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="c", SLACK_SIGNING_SECRET="s", OPENAI_API_KEY="k")
    oauth.require_serving(socket_mode=False)
    assert oauth.oauth_enabled


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("FRUGAL_MODELS=gpt-4.1-mini\nPORT=4000\n")
    settings = load_settings({"PORT": "5000"}, dotenv_path=dotenv)
    assert settings.models == ("gpt-4.1-mini",)
    assert settings.port == 5000
