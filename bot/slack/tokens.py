"""Slack's verdict on the configured tokens: the bot token (auth.test) and the app-level token (apps.connections.open)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.config import ConfigError, Settings
from bot.slack.clients import web_client

log = logging.getLogger(__name__)

# Slack's answers meaning "this token is wrong", as opposed to Slack being slow, down or throttling.
REJECTED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type"}
)
START_TIMEOUT_S = 10

BOT_TOKEN_FIX = (
    "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page; "
    "reinstall the app if the token was revoked"
)
APP_TOKEN_FIX = (
    "set SLACK_APP_TOKEN to an app-level token (xapp-…) with the connections:write scope, from the app's "
    "Basic Information → App-Level Tokens, and turn Socket Mode on (manifest.socket.yml does)"
)


ACCEPTED, REJECTED_TOKEN, OTHER_ERROR, UNREACHABLE = "accepted", "rejected", "error", "unreachable"


@dataclass(frozen=True)
class TokenVerdict:
    """What Slack said of one token: accepted (who it is), rejected (Slack's error), another error, or unreachable."""

    variable: str
    outcome: str
    detail: str


async def bot_token_verdict(token: str, api_url: str, *, timeout: int = START_TIMEOUT_S) -> TokenVerdict:
    """auth.test with the bot token."""
    try:
        auth = await web_client(token, api_url, timeout=timeout).auth_test()
    except SlackApiError as err:
        return _refused("SLACK_BOT_TOKEN", "auth.test", err)
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        return TokenVerdict("SLACK_BOT_TOKEN", UNREACHABLE, f"cannot reach {api_url} ({type(err).__name__})")
    who = f"workspace {auth.get('team')} ({auth.get('team_id')}) as @{auth.get('user')}"
    return TokenVerdict("SLACK_BOT_TOKEN", ACCEPTED, f"auth.test: {who}")


async def app_token_verdict(token: str, api_url: str, *, timeout: int = START_TIMEOUT_S) -> TokenVerdict:
    """apps.connections.open with the app-level token: the call Socket Mode makes to connect."""
    try:
        # The WebSocket URL it hands out is single-use and expires unused; Socket Mode asks for its own.
        await web_client(None, api_url, timeout=timeout).apps_connections_open(app_token=token)
    except SlackApiError as err:
        return _refused("SLACK_APP_TOKEN", "apps.connections.open", err)
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        return TokenVerdict("SLACK_APP_TOKEN", UNREACHABLE, f"cannot reach {api_url} ({type(err).__name__})")
    return TokenVerdict("SLACK_APP_TOKEN", ACCEPTED, "apps.connections.open: Socket Mode accepts it")


async def verify_tokens(settings: Settings, *, socket_mode: bool) -> None:
    """Raise ConfigError, one line per token, when Slack rejects a token serving needs; anything else only logs."""
    checks = []
    if settings.slack_bot_token:
        checks.append(bot_token_verdict(settings.slack_bot_token, settings.slack_api_url))
    if socket_mode and settings.slack_app_token:
        checks.append(app_token_verdict(settings.slack_app_token, settings.slack_api_url))
    problems = []
    for verdict in await asyncio.gather(*checks):
        if verdict.outcome == REJECTED_TOKEN:
            kind = "bot token" if verdict.variable == "SLACK_BOT_TOKEN" else "app-level token"
            fix = BOT_TOKEN_FIX if verdict.variable == "SLACK_BOT_TOKEN" else APP_TOKEN_FIX
            problems.append(f"{verdict.variable}: Slack rejected the {kind} ({verdict.detail}); {fix}")
        elif verdict.outcome != ACCEPTED:
            # Slack down or unreachable is not the operator's mistake: start, and let the retries reach it.
            log.warning("%s not verified at start: %s", verdict.variable, verdict.detail)
    if problems:
        raise ConfigError(problems)


def _refused(variable: str, method: str, err: SlackApiError) -> TokenVerdict:
    error = err.response.get("error") or f"HTTP {err.response.status_code}"
    return TokenVerdict(variable, REJECTED_TOKEN if error in REJECTED else OTHER_ERROR, f"{method}: {error}")
