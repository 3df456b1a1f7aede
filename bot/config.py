"""Settings: every environment variable of the contract, read once and validated."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///frugal.db"
DEFAULT_MODELS = "gpt-4.1-nano,gpt-6-luna,gpt-5.6-luna,gpt-5.4-nano"
DEFAULT_MAX_INPUT_CHARS = 2000
DEFAULT_MODEL_TIMEOUT_S = 30.0
DEFAULT_SHUTDOWN_GRACE_S = 25.0
SERVICE_TIERS = ("default", "flex")
# Slack button values hold at most 2,000 characters; the rewrite buttons carry
# the text, so a larger input limit would break "Try another style".
MAX_INPUT_CHARS_CEILING = 2000

T = TypeVar("T")


class ConfigError(ValueError):
    """Settings are missing or wrong: one line per problem, each naming the variable and the fix."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


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
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S
    classify_service_tier: str = "default"
    openai_org_id: str | None = None
    openai_project_id: str | None = None

    @property
    def oauth_enabled(self) -> bool:
        """True when the app installs into several workspaces through OAuth."""
        return bool(self.slack_client_id and self.slack_client_secret)

    def serving_problems(self, *, socket_mode: bool) -> list[str]:
        """What serving Slack needs and is not set, one line each naming the variable and the fix."""
        return missing_for_serving(lambda name: bool(getattr(self, name.lower())), socket_mode=socket_mode)

    def require_serving(self, *, socket_mode: bool) -> None:
        """Raise ConfigError listing everything needed to serve Slack that is not set."""
        if problems := self.serving_problems(socket_mode=socket_mode):
            raise ConfigError(problems)


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env") -> Settings:
    """Read settings from the environment, with a .env file underneath it; every wrong value in one ConfigError."""
    settings, problems = diagnose_settings(environ, dotenv_path=dotenv_path)
    if settings is None:
        raise ConfigError(problems)
    return settings


def load_serving_settings(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env", socket_mode: bool
) -> Settings:
    """As load_settings, and everything serving Slack needs must be set: wrong and missing values in one ConfigError."""
    settings, problems = diagnose_settings(environ, dotenv_path=dotenv_path, serving=True, socket_mode=socket_mode)
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


def diagnose_settings(
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
    serving: bool = False,
    socket_mode: bool | None = None,
) -> tuple[Settings | None, list[str]]:
    """The settings (None if a value is wrong) and every problem at once: wrong values, then, with
    `serving`, what serving Slack needs and is missing (Socket Mode when `socket_mode`, or when it is
    None and SLACK_APP_TOKEN is set)."""
    env: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    real = os.environ if environ is None else environ
    env.update(real)
    reader = _Reader(env)
    settings = _read(reader)
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        # Bolt reads these two from the process environment itself, and turns OAuth on when they exist at
        # all, empty or not; Frugal would then refuse every workspace as not installed.
        if name in real and not real[name].strip():
            reader.problems.append(f"{name}: set but empty in the environment; unset it, or give it its value")
    problems = list(reader.problems)
    if serving:
        if socket_mode is None:
            socket_mode = reader.present("SLACK_APP_TOKEN")
        problems += missing_for_serving(reader.present, socket_mode=socket_mode)
    return (None if reader.problems else settings), problems


def missing_for_serving(present: Callable[[str], bool], *, socket_mode: bool) -> list[str]:
    """The variables serving Slack needs that `present` says are not set, one line each with the fix."""
    problems = []
    if socket_mode and not present("SLACK_APP_TOKEN"):
        problems.append(
            "SLACK_APP_TOKEN: required for Socket Mode; generate an app-level token (xapp-…) with the "
            "connections:write scope under the app's Basic Information → App-Level Tokens"
        )
    if not socket_mode and not present("SLACK_SIGNING_SECRET"):
        problems.append(
            "SLACK_SIGNING_SECRET: required to verify requests from Slack; copy it from the app's "
            "Basic Information → App Credentials → Signing Secret"
        )
    oauth = present("SLACK_CLIENT_ID") and present("SLACK_CLIENT_SECRET")
    if not oauth and not present("SLACK_BOT_TOKEN"):
        problems.append(
            "SLACK_BOT_TOKEN: required; copy the Bot User OAuth Token (xoxb-…) from the app's "
            "OAuth & Permissions page (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth)"
        )
    if not present("OPENAI_API_KEY"):
        problems.append(
            "OPENAI_API_KEY: required to call the models; set it to your OpenAI API key "
            "(or the key of the endpoint at OPENAI_BASE_URL)"
        )
    return problems


class _Reader:
    """Reads variables, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def present(self, name: str) -> bool:
        return self.get(name) is not None

    def parse(self, name: str, parse: Callable[[str | None], T]) -> T | None:
        try:
            return parse(self.get(name))
        except ConfigError as err:
            self.problems.extend(err.problems)
            return None


def _read(r: _Reader) -> Settings:
    client_id, client_secret = r.get("SLACK_CLIENT_ID"), r.get("SLACK_CLIENT_SECRET")
    if bool(client_id) != bool(client_secret):
        missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
        r.problems.append(
            f"{missing}: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together; set both (Basic Information → "
            "App Credentials) or neither"
        )
    # With a wrong value the Settings are never handed out, so None in a field is only seen here.
    return Settings(
        slack_bot_token=r.parse("SLACK_BOT_TOKEN", lambda v: _token("SLACK_BOT_TOKEN", v, "xoxb-")),
        slack_signing_secret=r.get("SLACK_SIGNING_SECRET"),
        slack_app_token=r.parse("SLACK_APP_TOKEN", lambda v: _token("SLACK_APP_TOKEN", v, "xapp-")),
        slack_client_id=client_id,
        slack_client_secret=client_secret,
        slack_api_url=r.parse(
            "SLACK_API_URL", lambda v: _http_url("SLACK_API_URL", v or DEFAULT_SLACK_API_URL, slash=True)
        ),
        openai_api_key=r.get("OPENAI_API_KEY"),
        openai_base_url=r.parse(
            "OPENAI_BASE_URL", lambda v: _http_url("OPENAI_BASE_URL", v, slash=False) if v else None
        ),
        database_url=r.parse("DATABASE_URL", lambda v: normalize_database_url(v or DEFAULT_DATABASE_URL)),
        models=r.parse("FRUGAL_MODELS", lambda v: _models(v or DEFAULT_MODELS)),
        admins=r.parse("FRUGAL_ADMINS", lambda v: _admins(v or "")),
        timezone=r.parse("FRUGAL_TIMEZONE", lambda v: _timezone(v or "UTC")),
        port=r.parse("PORT", lambda v: _int("PORT", v or "3000", 1, 65535)),
        catalog_file=r.parse("FRUGAL_MODEL_CATALOG", lambda v: _existing_file("FRUGAL_MODEL_CATALOG", v)),
        baseline_model=r.get("FRUGAL_BASELINE_MODEL"),
        max_input_chars=r.parse(
            "FRUGAL_MAX_INPUT_CHARS",
            lambda v: _int("FRUGAL_MAX_INPUT_CHARS", v or str(DEFAULT_MAX_INPUT_CHARS), 1, MAX_INPUT_CHARS_CEILING),
        ),
        model_timeout=r.parse(
            "FRUGAL_MODEL_TIMEOUT", lambda v: _seconds("FRUGAL_MODEL_TIMEOUT", v, DEFAULT_MODEL_TIMEOUT_S, 600)
        ),
        shutdown_grace=r.parse(
            "FRUGAL_SHUTDOWN_GRACE", lambda v: _seconds("FRUGAL_SHUTDOWN_GRACE", v, DEFAULT_SHUTDOWN_GRACE_S, 3600)
        ),
        classify_service_tier=r.parse("FRUGAL_CLASSIFY_SERVICE_TIER", _service_tier),
        openai_org_id=r.get("OPENAI_ORG_ID"),
        openai_project_id=r.get("OPENAI_PROJECT_ID"),
    )


def normalize_database_url(url: str) -> str:
    """Map the URL forms people paste onto the async drivers Frugal uses."""
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ConfigError(
            f"DATABASE_URL: not a database URL: {_redact(url)!r} (e.g. sqlite:///frugal.db or postgresql://user@host/db)"
        )
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


def _token(name: str, value: str | None, prefix: str) -> str | None:
    if value is not None and not value.startswith(prefix):
        kind = "the Bot User OAuth Token" if prefix == "xoxb-" else "an app-level token"
        raise ConfigError(f"{name}: must start with {prefix!r} (use {kind}, {prefix}…)")
    return value


def _http_url(name: str, value: str, *, slash: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: not an http(s) URL: {value!r} (e.g. https://host/path)")
    if slash and not value.endswith("/"):
        value += "/"
    return value


def _models(value: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in value.split(",") if m.strip())
    if not models:
        raise ConfigError("FRUGAL_MODELS: name at least one model (comma-separated, e.g. gpt-4.1-nano)")
    if len(set(models)) != len(models):
        raise ConfigError(f"FRUGAL_MODELS: a model is listed twice: {value!r} (list each once)")
    return models


def _admins(value: str) -> frozenset[str]:
    admins = {a.strip() for a in value.split(",") if a.strip()}
    bad = sorted(a for a in admins if not a.isalnum() or a[0] not in "UW")
    if bad:
        raise ConfigError(
            f"FRUGAL_ADMINS: not Slack user IDs: {', '.join(bad)} (use IDs like U0123ABCD, comma-separated)"
        )
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
        raise ConfigError(f"{name}: not a whole number: {value!r} (use {low}–{high})") from None
    if not low <= number <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {number}")
    return number


def _seconds(name: str, value: str | None, default: float, high: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: not a number of seconds: {value!r} (e.g. {default:g})") from None
    if not 0 < number <= high:
        raise ConfigError(f"{name}: must be more than 0 and at most {high:g} seconds, got {value}")
    return number


def _service_tier(value: str | None) -> str:
    tier = (value or "default").lower()
    if tier not in SERVICE_TIERS:
        raise ConfigError(f"FRUGAL_CLASSIFY_SERVICE_TIER: must be 'default' or 'flex', got {value!r}")
    return tier


def _existing_file(name: str, value: str | None) -> str | None:
    if value is not None and not Path(value).is_file():
        raise ConfigError(f"{name}: no such file: {value!r} (point it at a JSON catalog file, or unset it)")
    return value
