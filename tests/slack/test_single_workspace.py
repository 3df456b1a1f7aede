"""Single-workspace mode: the workspace is the installation's (auth.test's team), whatever team_id a payload names."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.bolt_tasks import settle_listeners
from tests.conftest import BOT_TOKEN
from tests.fakes.slack_signing import app_mention_event, event_callback

# auth.test for the configured token names this team: the installation's, which no payload below carries.
INSTALLED = "TINSTALLED"
# A connected workspace in a shared channel: its people's payloads carry their own team_id.
OTHER = "T_OTHER"
ADMIN = "UADMIN1"
SHARED = "CSHARED"


@pytest.fixture
def installed(fake_slack):
    """Fake Slack's auth.test says the bot token belongs to INSTALLED; ADMIN is one of its admins."""
    fake_slack.tokens[BOT_TOKEN] = {"team_id": INSTALLED, "team": "Installed"}
    fake_slack.users[ADMIN] = {"is_admin": True}
    return fake_slack


async def _ledger(frugal) -> list[tuple[str, str]]:
    async with frugal.container.engine.connect() as conn:
        rows = await conn.execute(text("SELECT team_id, channel_id FROM usage_ledger ORDER BY id"))
        return [tuple(row) for row in rows]


async def _rewrite(frugal, fake_slack, *, team_id: str, channel_id: str = SHARED) -> str:
    _, name = await frugal.command(
        "/rewrite", "formal: can u send the report pls", team_id=team_id, channel_id=channel_id
    )
    [reply] = await fake_slack.await_calls(f"response_url:{name}")
    return reply.params["text"]


async def test_a_connected_workspace_cannot_bypass_a_spent_channel_quota(frugal, installed, fake_openai):
    response, _ = await frugal.command("/frugal", "quota set here 1 requests/day", user_id=ADMIN, channel_id=SHARED)
    assert "Done" in (await response.json())["text"]
    await _rewrite(frugal, installed, team_id=INSTALLED)
    assert len(fake_openai.requests) == 1

    refused = await _rewrite(frugal, installed, team_id=OTHER)
    await settle_listeners()

    assert "quota of *1 request per day* has no room" in refused and "Nothing was charged" in refused
    assert len(fake_openai.requests) == 1
    assert await _ledger(frugal) == [(INSTALLED, SHARED)]


async def test_a_connected_workspaces_request_is_charged_under_the_installation(frugal, installed, fake_openai):
    await _rewrite(frugal, installed, team_id=OTHER, channel_id="CGUEST")
    await settle_listeners()

    assert len(fake_openai.requests) == 1
    assert await _ledger(frugal) == [(INSTALLED, "CGUEST")]
    assert installed.calls_to("auth.test")  # where the installation's team came from


async def test_a_connected_workspaces_mention_counts_against_the_channel_quota(frugal, installed, fake_openai):
    response, _ = await frugal.command("/frugal", "quota set here 1 requests/day", user_id=ADMIN, channel_id=SHARED)
    assert "Done" in (await response.json())["text"]
    await _rewrite(frugal, installed, team_id=INSTALLED)

    event = app_mention_event("<@UBOT> rewrite formal: can u send the report pls", channel=SHARED, user="UGUEST")
    body, content_type = event_callback(event | {"user_team": OTHER}, team_id=OTHER)
    await frugal.post(body, content_type)
    # The answer goes in the mention's thread (the channel also gets the quota's 100 % alert, at the top level).
    [reply] = await installed.await_calls(
        "chat.postMessage", predicate=lambda c: c.params.get("channel") == SHARED and c.params.get("thread_ts")
    )
    await settle_listeners()

    assert "has no room for this request" in reply.params["text"]
    assert len(fake_openai.requests) == 1
    assert await _ledger(frugal) == [(INSTALLED, SHARED)]


async def test_usage_of_a_shared_channel_is_the_installations_whoever_asks(frugal, installed):
    await _rewrite(frugal, installed, team_id=OTHER)
    await settle_listeners()

    _, name = await frugal.command("/usage", "", team_id=INSTALLED, channel_id=SHARED)
    [own] = await installed.await_calls(f"response_url:{name}")
    _, name = await frugal.command("/usage", "", team_id=OTHER, channel_id=SHARED)
    [guest] = await installed.await_calls(f"response_url:{name}")

    assert own.params["text"].startswith("This channel this month: 1 request, $")
    assert guest.params["text"] == own.params["text"]
