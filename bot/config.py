"""Settings: every environment variable of the contract, read once and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///frugal.db"
DEFAULT_MODELS = "gpt-4.1-nano,gpt-4o-mini"
DEFAULT_MAX_INPUT_CHARS = 2000
# Slack button values hold at most 2,000 characters; the rewrite buttons carry
# the text, so a larger input limit would break "Try another style".
MAX_INPUT_CHARS_CEILING = 2000


class ConfigError(ValueError):
    """A setting is missing or wrong; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one Frugal process."""

    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_app_token: str | None
    slack_client_id: str | None
    slack_client_secret: str | None
    slack_api_url: str
    openai_api_key: str | None
    openai_base_url: str | None
    database_url: str
    models: tuple[str, ...]
    admins: frozenset[str]
    timezone: ZoneInfo
    port: int
    catalog_file: str | None
    baseline_model: str | None
    max_input_chars: int
    model_timeout: float

    @property
    def oauth_enabled(self) -> bool:
        """True when the app installs into several workspaces through OAuth."""
        return bool(self.slack_client_id and self.slack_client_secret)

    def require_serving(self, *, socket_mode: bool) -> None:
        """Raise ConfigError unless everything needed to serve Slack is set."""
        if socket_mode and not self.slack_app_token:
            raise ConfigError("SLACK_APP_TOKEN: required for --socket (an xapp- token)")
        if not socket_mode and not self.slack_signing_secret:
            raise ConfigError("SLACK_SIGNING_SECRET: required to verify requests from Slack")
        if not self.oauth_enabled and not self.slack_bot_token:
            raise ConfigError(
                "SLACK_BOT_TOKEN: required (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth)"
            )
        if not self.openai_api_key:
            raise ConfigError("OPENAI_API_KEY: required to call the models")


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Read settings from the environment, with a .env file underneath it."""
    env: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    client_id, client_secret = get("SLACK_CLIENT_ID"), get("SLACK_CLIENT_SECRET")
    if bool(client_id) != bool(client_secret):
        missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
        raise ConfigError(f"{missing}: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together")

    return Settings(
        slack_bot_token=_token(get, "SLACK_BOT_TOKEN", "xoxb-"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=_token(get, "SLACK_APP_TOKEN", "xapp-"),
        slack_client_id=client_id,
        slack_client_secret=client_secret,
        slack_api_url=_http_url("SLACK_API_URL", get("SLACK_API_URL") or DEFAULT_SLACK_API_URL, slash=True),
        openai_api_key=get("OPENAI_API_KEY"),
        openai_base_url=_http_url("OPENAI_BASE_URL", v, slash=False) if (v := get("OPENAI_BASE_URL")) else None,
        database_url=normalize_database_url(get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        models=_models(get("FRUGAL_MODELS") or DEFAULT_MODELS),
        admins=_admins(get("FRUGAL_ADMINS") or ""),
        timezone=_timezone(get("FRUGAL_TIMEZONE") or "UTC"),
        port=_int("PORT", get("PORT") or "3000", 1, 65535),
        catalog_file=_existing_file("FRUGAL_MODEL_CATALOG", get("FRUGAL_MODEL_CATALOG")),
        baseline_model=get("FRUGAL_BASELINE_MODEL"),
        max_input_chars=_int(
            "FRUGAL_MAX_INPUT_CHARS",
            get("FRUGAL_MAX_INPUT_CHARS") or str(DEFAULT_MAX_INPUT_CHARS),
            1,
            MAX_INPUT_CHARS_CEILING,
        ),
        model_timeout=_seconds("FRUGAL_MODEL_TIMEOUT", get("FRUGAL_MODEL_TIMEOUT") or "30"),
    )


def normalize_database_url(url: str) -> str:
    """Map the URL forms people paste onto the async drivers Frugal uses."""
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ConfigError(f"DATABASE_URL: not a database URL: {_redact(url)!r}")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"):
        parts = urlsplit(f"postgresql+asyncpg://{rest}")
        # asyncpg spells libpq's sslmode as ssl.
        query = urlencode([("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)])
        return urlunsplit(parts._replace(query=query))
    raise ConfigError(f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***")
    return url


def _token(get, name: str, prefix: str) -> str | None:
    value = get(name)
    if value is not None and not value.startswith(prefix):
        raise ConfigError(f"{name}: must start with {prefix!r}")
    return value


def _http_url(name: str, value: str, *, slash: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: not an http(s) URL: {value!r}")
    if slash and not value.endswith("/"):
        value += "/"
    return value


def _models(value: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in value.split(",") if m.strip())
    if not models:
        raise ConfigError("FRUGAL_MODELS: name at least one model")
    if len(set(models)) != len(models):
        raise ConfigError(f"FRUGAL_MODELS: a model is listed twice: {value!r}")
    return models


def _admins(value: str) -> frozenset[str]:
    admins = {a.strip() for a in value.split(",") if a.strip()}
    bad = sorted(a for a in admins if not a.isalnum() or not a[0] in "UW")
    if bad:
        raise ConfigError(f"FRUGAL_ADMINS: not Slack user IDs: {', '.join(bad)}")
    return frozenset(admins)


def _timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"FRUGAL_TIMEZONE: unknown time zone {value!r} (e.g. UTC, Europe/Paris)") from None


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: not a whole number: {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {number}")
    return number


def _seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: not a number of seconds: {value!r}") from None
    if not 0 < number <= 600:
        raise ConfigError(f"{name}: must be between 0 and 600 seconds, got {value}")
    return number


def _existing_file(name: str, value: str | None) -> str | None:
    if value is not None and not Path(value).is_file():
        raise ConfigError(f"{name}: no such file: {value!r}")
    return value
