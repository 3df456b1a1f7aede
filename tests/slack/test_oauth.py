"""Multi-workspace OAuth: the install flow over real HTTP, installations in the database, uninstalls."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from bot.infra.db.engine import make_engine
from bot.infra.db.slack_stores import slack_metadata
from bot.slack.oauth import BOT_SCOPES, NOT_INSTALLED
from tests.fakes.openai_server import Reply
from tests.fakes.slack_signing import event_callback
from tests.slack.conftest import CLIENT_ID, STATE_COOKIE, finish_install, start_install


async def _count(frugal, table: str, team_id: str | None = None) -> int:
    where = " WHERE team_id = :team" if team_id else ""
    async with frugal.container.engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {table}{where}"), {"team": team_id})).scalar_one()


async def test_install_page_sets_a_state_cookie_and_links_to_slack(oauth_frugal):
    async with oauth_frugal.http.get(f"{oauth_frugal.url}/slack/install") as resp:
        assert resp.status == 200
        page = await resp.text()
        cookie = resp.headers["Set-Cookie"]

    assert cookie.startswith(f"{STATE_COOKIE}=") and "HttpOnly" in cookie
    state = cookie.split(";")[0].split("=", 1)[1]
    link = page[page.index("https://slack.com/oauth/v2/authorize") :].split('"')[0].replace("&amp;", "&")
    query = parse_qs(urlsplit(link).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["state"] == [state]
    assert set(query["scope"][0].split(",")) == set(BOT_SCOPES)
    assert await _count(oauth_frugal, "slack_oauth_states") == 1


async def test_redirect_stores_the_installation_with_the_fake_oauth_answer(oauth_frugal, fake_slack, install):
    workspace = await install(oauth_frugal, "T1")

    [exchange] = fake_slack.calls_to("oauth.v2.access")
    assert exchange.params["code"] == "code-T1"
    async with oauth_frugal.container.engine.connect() as conn:
        bot = (await conn.execute(text("SELECT team_id, bot_token, bot_user_id, client_id FROM slack_bots"))).one()
    assert tuple(bot) == ("T1", workspace.token, workspace.bot_user_id, CLIENT_ID)
    assert await _count(oauth_frugal, "slack_installations", "T1") == 1
    # The state was used up.
    assert await _count(oauth_frugal, "slack_oauth_states") == 0


async def test_redirect_from_another_browser_is_refused_and_installs_nothing(oauth_frugal, fake_slack):
    state = await start_install(oauth_frugal)

    result = await finish_install(oauth_frugal, state=state, code="code-T1", cookie_state="someone-elses-state")

    assert result.status == 400
    assert fake_slack.calls_to("oauth.v2.access") == []
    assert await _count(oauth_frugal, "slack_installations") == 0


async def test_a_state_works_once(oauth_frugal, fake_slack, install):
    state = await start_install(oauth_frugal)
    first = await finish_install(oauth_frugal, state=state, code="code-T1")
    replay = await finish_install(oauth_frugal, state=state, code="code-T1")

    assert (first.status, replay.status) == (200, 401)
    assert len(fake_slack.calls_to("oauth.v2.access")) == 1


async def test_a_code_slack_refuses_installs_nothing(oauth_frugal, fake_slack):
    fake_slack.oauth_response = {"ok": False, "error": "invalid_code"}
    state = await start_install(oauth_frugal)

    result = await finish_install(oauth_frugal, state=state, code="stale")

    assert result.status == 401
    assert await _count(oauth_frugal, "slack_installations") == 0


async def test_requests_are_answered_with_the_installed_workspace_token(oauth_frugal, fake_slack, fake_openai, install):
    fake_slack.strict_tokens = True
    workspace = await install(oauth_frugal, "T1")
    fake_openai.script("gpt-4.1-nano", Reply("Done."))

    _, name = await oauth_frugal.command("/rewrite", "hello", team_id="T1")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    assert answer.params["text"] == "Done."
    assert {c.token for c in fake_slack.calls_to("auth.test")} == {workspace.token}


async def test_a_workspace_that_never_installed_gets_no_model_call(oauth_frugal, fake_slack, fake_openai, install):
    await install(oauth_frugal, "T1")

    _, name = await oauth_frugal.command("/rewrite", "hello", team_id="T9")

    [refusal] = await fake_slack.await_calls(f"response_url:{name}")
    assert refusal.params["text"] == NOT_INSTALLED
    await asyncio.sleep(0.2)
    assert fake_openai.requests == []


async def _uninstall_then_command(oauth_frugal, fake_slack, fake_openai, install, event: dict) -> str:
    await install(oauth_frugal, "T1")
    await install(oauth_frugal, "T2")
    _, first = await oauth_frugal.command("/rewrite", "before", team_id="T1")
    await fake_slack.await_calls(f"response_url:{first}")
    assert await _count(oauth_frugal, "usage_ledger", "T1") == 1

    body, content_type = event_callback(event, team_id="T1")
    response = await oauth_frugal.post(body, content_type)
    assert response.status == 200

    _, after = await oauth_frugal.command("/rewrite", "after", team_id="T1")
    await fake_slack.await_calls(f"response_url:{after}")
    return after


async def test_app_uninstalled_removes_the_installation_and_keeps_the_history(oauth_frugal, fake_slack, fake_openai, install):
    await _uninstall_then_command(oauth_frugal, fake_slack, fake_openai, install, {"type": "app_uninstalled"})

    assert await _count(oauth_frugal, "slack_installations", "T1") == 0
    assert await _count(oauth_frugal, "slack_bots", "T1") == 0
    # Billing history stays; the other workspace is untouched.
    assert await _count(oauth_frugal, "usage_ledger", "T1") == 1
    assert await _count(oauth_frugal, "slack_bots", "T2") == 1
    assert len(fake_openai.requests) == 1


async def test_tokens_revoked_for_the_bot_removes_the_installation(oauth_frugal, fake_slack, fake_openai, install):
    event = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOTT1"]}}
    await _uninstall_then_command(oauth_frugal, fake_slack, fake_openai, install, event)

    assert await _count(oauth_frugal, "slack_bots", "T1") == 0
    assert await _count(oauth_frugal, "slack_installations", "T1") == 0
    assert await _count(oauth_frugal, "slack_bots", "T2") == 1
    assert len(fake_openai.requests) == 1


async def test_single_workspace_mode_serves_no_install_routes_and_survives_uninstall_events(frugal, fake_slack):
    async with frugal.http.get(f"{frugal.url}/slack/install") as resp:
        assert resp.status == 404
    body, content_type = event_callback({"type": "app_uninstalled"})

    response = await frugal.post(body, content_type)

    assert response.status == 200


async def test_migrations_create_the_store_tables_exactly_as_slack_sdk_defines_them(migrated_url):
    engine = make_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), slack_metadata())
            )
    finally:
        await engine.dispose()
    ours = set(slack_metadata().tables)
    # Frugal's own tables show up as removals here; only the store tables are checked.
    assert [d for d in diffs if _table_of(d) in ours] == []


def _table_of(diff) -> str:
    if isinstance(diff, list):  # modify_* diffs come as a list of tuples
        return _table_of(diff[0])
    kind, obj = diff[0], diff[1]
    if kind.endswith("_table"):
        return obj.name
    if kind.endswith("_column"):
        return diff[2]
    if kind.startswith("modify_"):
        return diff[2]
    return obj.table.name
