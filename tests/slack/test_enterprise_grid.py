"""Enterprise Grid (OAuth mode): a workspace inside an org gets its digests and its admins' alert DMs, with its own token."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import text

from bot.infra.db.engine import make_engine
from bot.infra.db.migrate import upgrade
from bot.ports.digest_store import Frequency
from tests.bolt_tasks import settle_listeners
from tests.fakes.openai_server import Fail
from tests.fakes.slack_signing import FORM, slash_command
from tests.slack.conftest import OAUTH_ENV, Workspace, answer_oauth_as, finish_install, start_install

ADMIN = "UGRIDADMIN"
CHANNEL = "CGRID1"
GRID_ENV = OAUTH_ENV | {"FRUGAL_ADMINS": ADMIN}


async def _install(frugal, fake_slack, *, team_id: str | None, enterprise_id: str, org_wide: bool) -> Workspace:
    """Install through the real OAuth flow, Slack answering as it does inside a Grid org."""
    name = (team_id or enterprise_id).lower()
    workspace = Workspace(team_id=team_id or "", token=f"xoxb-{name}-token", bot_user_id=f"UBOT{name.upper()}")
    answer_oauth_as(fake_slack, workspace)
    fake_slack.oauth_response |= {
        "team": {"id": team_id, "name": f"Team {team_id}"} if team_id else None,
        "enterprise": {"id": enterprise_id, "name": f"Org {enterprise_id}"},
        "is_enterprise_install": org_wide,
    }
    fake_slack.tokens[workspace.token] |= {"enterprise_id": enterprise_id, "is_enterprise_install": org_wide}
    state = await start_install(frugal)
    result = await finish_install(frugal, state=state, code=f"code-{name}")
    assert result.status == 200, result.body
    return workspace


def _grid_command(
    command: str,
    text_: str,
    *,
    team_id: str,
    enterprise_id: str,
    org_wide: bool,
    response_url: str,
    user_id: str = ADMIN,
    channel_id: str = CHANNEL,
) -> str:
    """A slash command as Slack sends it from a workspace of a Grid org."""
    body, _ = slash_command(
        command, text_, team_id=team_id, user_id=user_id, channel_id=channel_id, response_url=response_url
    )
    fields = dict(parse_qsl(body)) | {
        "enterprise_id": enterprise_id,
        "enterprise_name": f"Org {enterprise_id}",
        "is_enterprise_install": "true" if org_wide else "false",
    }
    return urlencode(fields)


async def _send(frugal, fake_slack, command: str, text_: str, **grid: Any) -> Any:
    name = f"g{len(fake_slack.calls)}"
    response = await frugal.post(
        _grid_command(command, text_, response_url=fake_slack.response_url(name), **grid), FORM
    )
    assert response.status == 200
    return name


async def _digest_posts(fake_slack, token: str) -> list[Any]:
    return await fake_slack.await_calls(
        "chat.postMessage", predicate=lambda c: c.params.get("channel") == CHANNEL and c.token == token
    )


@pytest.mark.parametrize("org_wide", [False, True], ids=["workspace install", "org-wide install"])
async def test_a_grid_workspace_gets_its_digest_with_its_token(start_frugal, migrated_url, fake_slack, org_wide):
    frugal = await start_frugal(migrated_url, **GRID_ENV)
    installed = await _install(
        frugal, fake_slack, team_id=None if org_wide else "TGRID1", enterprise_id="EORG1", org_wide=org_wide
    )
    grid = {"team_id": "TGRID1", "enterprise_id": "EORG1", "org_wide": org_wide}

    await _send(frugal, fake_slack, "/frugal", "digest daily 09:00", **grid)
    await _send(frugal, fake_slack, "/frugal", "digest now", **grid)
    [digest] = await _digest_posts(fake_slack, installed.token)
    await settle_listeners()

    assert f"Frugal usage in <#{CHANNEL}>" in digest.params["text"]
    assert [c.method for c in fake_slack.calls if "not installed" in json.dumps(c.params).lower()] == []


async def test_a_grid_workspaces_digest_is_posted_by_a_process_that_saw_none_of_its_requests(
    start_frugal, migrated_url, fake_slack
):
    # The scheduler posts digests with no request to read the org from: the org must be stored.
    first = await start_frugal(migrated_url, **GRID_ENV)
    installed = await _install(first, fake_slack, team_id=None, enterprise_id="EORG2", org_wide=True)
    await _send(
        first, fake_slack, "/frugal", "digest daily 09:00", team_id="TGRID2", enterprise_id="EORG2", org_wide=True
    )
    await settle_listeners()

    later = await start_frugal(migrated_url, **GRID_ENV)
    await later.container.digests.post_now("TGRID2", CHANNEL, Frequency.DAILY)

    assert await _digest_posts(fake_slack, installed.token)


async def test_a_grid_workspaces_admins_get_the_alert_dm(start_frugal, migrated_url, fake_slack, fake_openai):
    frugal = await start_frugal(migrated_url, **GRID_ENV)
    installed = await _install(frugal, fake_slack, team_id="TGRID3", enterprise_id="EORG3", org_wide=False)
    primary = frugal.container.settings.models[0]
    fake_openai.set_behaviour(primary, Fail.insufficient_quota())

    await _send(
        frugal,
        fake_slack,
        "/rewrite",
        "formal: can u send the report pls",
        team_id="TGRID3",
        enterprise_id="EORG3",
        org_wide=False,
        user_id="UMEMBER",
    )
    [dm] = await fake_slack.await_calls("chat.postMessage", predicate=lambda c: c.params.get("channel") == ADMIN)
    await settle_listeners()

    assert dm.token == installed.token
    assert "Frugal needs an admin" in dm.params["text"]


async def test_the_migration_records_the_org_of_grid_workspaces_already_installed(database_url):
    await upgrade(database_url, "0008")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for team, enterprise, at in [
                ("TA", "EA", datetime(2026, 1, 1)),
                ("TA", "EB", datetime(2026, 2, 1)),
                ("TC", None, datetime(2026, 1, 1)),
            ]:
                await conn.execute(
                    text(
                        "INSERT INTO slack_bots (client_id, app_id, enterprise_id, team_id, bot_token, bot_id, "
                        "bot_user_id, is_enterprise_install, installed_at) VALUES "
                        "('c', 'A1', :e, :t, 'xoxb', 'B1', 'U1', false, :at)"
                    ),
                    {"e": enterprise, "t": team, "at": at},
                )
        await upgrade(database_url, "0010")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT team_id, enterprise_id, is_enterprise_install FROM slack_workspaces"))
            ).all()
    finally:
        await engine.dispose()

    assert [tuple(r) for r in rows] == [("TA", "EB", False)]  # the latest install; TC is not in a Grid org
