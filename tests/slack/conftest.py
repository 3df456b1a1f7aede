"""Slack-surface fixtures: Frugal in OAuth mode, and installing a workspace through the real flow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import pytest

from tests.fakes.slack_server import FakeSlack

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "client-secret-for-tests"
OAUTH_ENV = {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET, "SLACK_BOT_TOKEN": ""}
STATE_COOKIE = "slack-app-oauth-state"


@dataclass(frozen=True)
class Workspace:
    """A workspace installed through the OAuth flow: its team, bot token and bot user."""

    team_id: str
    token: str
    bot_user_id: str


@dataclass(frozen=True)
class OAuthResult:
    """What the browser saw at the end of the OAuth redirect."""

    status: int
    body: str


@pytest.fixture
async def oauth_frugal(start_frugal: Callable[..., Any], migrated_url: str):
    """A running Frugal in multi-workspace (OAuth) mode on a migrated database."""
    return await start_frugal(migrated_url, **OAUTH_ENV)


async def start_install(frugal) -> str:
    """GET /slack/install as a browser would; returns the state from the cookie it sets."""
    async with frugal.http.get(f"{frugal.url}/slack/install", allow_redirects=False) as resp:
        assert resp.status == 200, await resp.text()
        cookie = SimpleCookie()
        for header in resp.headers.getall("Set-Cookie"):
            cookie.load(header)
        return cookie[STATE_COOKIE].value


async def finish_install(frugal, *, state: str, code: str, cookie_state: str | None = None) -> OAuthResult:
    """GET /slack/oauth_redirect as Slack sends the browser back, with the state cookie."""
    headers = {"Cookie": f"{STATE_COOKIE}={cookie_state or state}"}
    params = {"code": code, "state": state}
    async with frugal.http.get(f"{frugal.url}/slack/oauth_redirect", params=params, headers=headers) as resp:
        return OAuthResult(status=resp.status, body=await resp.text())


def answer_oauth_as(fake_slack: FakeSlack, workspace: Workspace) -> None:
    """Make the fake's oauth.v2.access install `workspace`, and its auth.test know the token."""
    fake_slack.oauth_response = {
        "ok": True,
        "access_token": workspace.token,
        "token_type": "bot",
        "scope": "commands,chat:write,app_mentions:read",
        "bot_user_id": workspace.bot_user_id,
        "app_id": "A0001",
        "team": {"id": workspace.team_id, "name": f"Team {workspace.team_id}"},
        "enterprise": None,
        "is_enterprise_install": False,
        "authed_user": {"id": f"U{workspace.team_id}ADMIN"},
    }
    fake_slack.tokens[workspace.token] = {
        "team_id": workspace.team_id,
        "team": f"Team {workspace.team_id}",
        "user_id": workspace.bot_user_id,
        "bot_id": f"B{workspace.team_id}",
    }


@pytest.fixture
def install(fake_slack: FakeSlack) -> Callable[..., Any]:
    """Install a workspace into an OAuth-mode Frugal through /slack/install and /slack/oauth_redirect."""

    async def run(frugal, team_id: str) -> Workspace:
        workspace = Workspace(team_id=team_id, token=f"xoxb-{team_id.lower()}-token", bot_user_id=f"UBOT{team_id}")
        answer_oauth_as(fake_slack, workspace)
        state = await start_install(frugal)
        result = await finish_install(frugal, state=state, code=f"code-{team_id}")
        assert result.status == 200, result.body
        return workspace

    return run
