"""Multi-workspace OAuth: the install flow over real HTTP, installations in the database, uninstalls."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from bot.infra.db.engine import make_engine
from bot.infra.db.slack_stores import slack_metadata
from bot.slack.listeners.shortcuts import REWRITE_SHORTCUT
from bot.slack.oauth import BOT_SCOPES, NOT_INSTALLED
from tests.bolt_tasks import settle_listeners
from tests.fakes.openai_server import Reply
from tests.fakes.slack_signing import app_mention_event, block_actions, event_callback, message_shortcut
from tests.slack.button_values import channel_members
from tests.slack.conftest import CLIENT_ID, STATE_COOKIE, finish_install, start_install


async def _count(frugal, table: str, team_id: str | None = None) -> int:
    where = " WHERE team_id = :team" if team_id else ""
    async with frugal.container.engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {table}{where}"), {"team": team_id})).scalar_one()


async def _until(read, expected, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value!r}, expected {expected!r}"
        await asyncio.sleep(0.02)


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
    await settle_listeners()
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
    # The event is acked before its listener runs: wait for the installation to go.
    await _until(lambda: _count(oauth_frugal, "slack_bots", "T1"), 0)

    _, after = await oauth_frugal.command("/rewrite", "after", team_id="T1")
    await fake_slack.await_calls(f"response_url:{after}")
    return after


async def test_app_uninstalled_removes_the_installation_and_keeps_the_history(
    oauth_frugal, fake_slack, fake_openai, install
):
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


async def test_a_redelivered_uninstall_is_harmless(oauth_frugal, fake_slack, install):
    await install(oauth_frugal, "T1")
    body, content_type = event_callback({"type": "app_uninstalled"}, team_id="T1", event_id="EvGONE")

    first = await oauth_frugal.post(body, content_type)
    await _until(lambda: _count(oauth_frugal, "slack_bots", "T1"), 0)
    again = await oauth_frugal.post(body, content_type, headers={"X-Slack-Retry-Num": "1"})

    assert (first.status, again.status) == (200, 200)
    assert await _count(oauth_frugal, "slack_installations", "T1") == 0


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


# --- two workspaces installed through the OAuth flow never see each other's data ---------------


async def _mention_in(frugal, workspace, channel: str, user: str, text: str, **fields) -> None:
    event = app_mention_event(f"<@{workspace.bot_user_id}> {text}", channel=channel, user=user, **fields)
    body, content_type = event_callback(event, team_id=workspace.team_id)
    assert (await frugal.post(body, content_type)).status == 200


async def _home_of(frugal, fake_slack, workspace, user: str) -> tuple[str, str]:
    """Open `user`'s Home tab in `workspace`: the published view's text and the token that published it."""
    before = len(fake_slack.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home", "event_ts": "1700000000.1"}
    body, content_type = event_callback(event, team_id=workspace.team_id)
    assert (await frugal.post(body, content_type)).status == 200
    publish = (await fake_slack.await_calls("views.publish", count=before + 1))[-1]
    assert publish.params["user_id"] == user
    return json.dumps(publish.params["view"], ensure_ascii=False), publish.token


async def test_two_workspaces_installed_by_oauth_see_only_their_own_data(
    oauth_frugal, fake_slack, fake_openai, install
):
    fake_slack.strict_tokens = True
    a = await install(oauth_frugal, "TA")
    b = await install(oauth_frugal, "TB")
    # Both admins, so each sees the admin part of the Home tab, which lists every channel of the workspace.
    fake_slack.users.update({"UA": {"is_admin": True}, "UB": {"is_admin": True}})
    fake_slack.threads[("CB", "1700000000.000900")] = [{"ts": "1700000000.000900", "text": "parent in B"}]

    # A: one /rewrite and one mention. B: one /rewrite, one mention, one mention in a thread with no text.
    _, ra = await oauth_frugal.command("/rewrite", "from A", team_id="TA", channel_id="CA", user_id="UA")
    _, rb = await oauth_frugal.command("/rewrite", "from B", team_id="TB", channel_id="CB", user_id="UB")
    await fake_slack.await_calls(f"response_url:{ra}")
    await fake_slack.await_calls(f"response_url:{rb}")
    await _mention_in(oauth_frugal, a, "CA", "UA", "rewrite formal: mention in A")
    await _mention_in(oauth_frugal, b, "CB", "UB", "rewrite mention in B")
    await _mention_in(oauth_frugal, b, "CB", "UB", "rewrite", thread_ts="1700000000.000900")
    posts = await fake_slack.await_calls("chat.postMessage", count=3)

    # Each mention was understood with its own workspace's bot user, and answered with its own token.
    assert {(p.params["channel"], p.token) for p in posts} == {("CA", a.token), ("CB", b.token)}
    assert all("I don't know" not in p.params["text"] for p in posts)
    [replies] = fake_slack.calls_to("conversations.replies")
    assert (replies.params["channel"], replies.token) == ("CB", b.token)
    assert (await _count(oauth_frugal, "usage_ledger", "TA"), await _count(oauth_frugal, "usage_ledger", "TB")) == (
        2,
        3,
    )

    # Each user claims membership of both channels: a request signed for A still reads nothing of B.
    fake_slack.responses["users.conversations"] = {"ok": True, "channels": [{"id": "CA"}, {"id": "CB"}]}
    home_a, token_a = await _home_of(oauth_frugal, fake_slack, a, "UA")
    home_b, token_b = await _home_of(oauth_frugal, fake_slack, b, "UB")

    assert (token_a, token_b) == (a.token, b.token)
    assert "<#CA> — 2 requests" in home_a and "*<#CA>* — 2 requests" in home_a and "CB" not in home_a
    assert "<#CB> — 3 requests" in home_b and "*<#CB>* — 3 requests" in home_b and "CA" not in home_b
    for call in fake_slack.calls_to("users.conversations") + fake_slack.calls_to("users.info"):
        assert call.token == {"UA": a.token, "UB": b.token}[call.params["user"]]

    # /usage: each workspace its own channel's figures; A asking about B's channel learns nothing of it.
    texts = {}
    for team, channel, user in (("TA", "CA", "UA"), ("TB", "CB", "UB"), ("TA", "CB", "UA")):
        _, name = await oauth_frugal.command("/usage", "", team_id=team, channel_id=channel, user_id=user)
        [answer] = await fake_slack.await_calls(f"response_url:{name}")
        texts[team, channel] = answer.params["text"]
    assert texts["TA", "CA"].startswith("This channel this month: 2 requests, ")
    assert texts["TB", "CB"].startswith("This channel this month: 3 requests, ")
    assert texts["TA", "CB"].startswith("This channel this month: 0 requests, ")

    # /frugal models is answered in both, and only where Frugal is installed.
    _, ma = await oauth_frugal.command("/frugal", "models", team_id="TA", channel_id="CA", user_id="UA")
    _, mb = await oauth_frugal.command("/frugal", "models", team_id="TB", channel_id="CB", user_id="UB")
    _, mc = await oauth_frugal.command("/frugal", "models", team_id="TC", channel_id="CC", user_id="UC")
    for name in (ma, mb):
        [answer] = await fake_slack.await_calls(f"response_url:{name}")
        assert answer.params["text"].startswith("Model chain: gpt-4.1-nano")
    [refusal] = await fake_slack.await_calls(f"response_url:{mc}")
    assert refusal.params["text"] == NOT_INSTALLED


async def test_a_message_shortcut_posts_in_thread_with_its_own_workspaces_token(oauth_frugal, fake_slack, install):
    fake_slack.strict_tokens = True
    a = await install(oauth_frugal, "TA")
    b = await install(oauth_frugal, "TB")
    message = {"type": "message", "user": "U2", "ts": "1700000000.000500", "text": "can u send the report pls"}
    channel_members(fake_slack, "U0001")  # the clicker may post in the channel

    for workspace, channel in ((a, "CA"), (b, "CB")):
        name = f"sc{workspace.team_id}"
        body, content_type = message_shortcut(
            REWRITE_SHORTCUT,
            message,
            team_id=workspace.team_id,
            channel_id=channel,
            response_url=fake_slack.response_url(name),
        )
        assert (await oauth_frugal.post(body, content_type)).status == 200
        [answer] = await fake_slack.await_calls(f"response_url:{name}")
        [button] = [e for blk in answer.params["blocks"] if blk["type"] == "actions" for e in blk["elements"]]
        body, content_type = block_actions(
            button["action_id"],
            button["value"],
            team_id=workspace.team_id,
            channel_id=channel,
            response_url=fake_slack.response_url(f"{name}-post"),
        )
        assert (await oauth_frugal.post(body, content_type)).status == 200

    posts = await fake_slack.await_calls("chat.postMessage", count=2)
    assert sorted((p.params["channel"], p.params["thread_ts"], p.token) for p in posts) == [
        ("CA", "1700000000.000500", a.token),
        ("CB", "1700000000.000500", b.token),
    ]
    assert (await _count(oauth_frugal, "usage_ledger", "TA"), await _count(oauth_frugal, "usage_ledger", "TB")) == (
        1,
        1,
    )
