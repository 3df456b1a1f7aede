"""Once-only deliveries end to end: signed duplicates and Slack retries in, one model call and one answer out."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import textwrap
from datetime import datetime, timedelta, timezone

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from bot.infra.db.deliveries import LEASE, RETENTION, DeliveryRow, SqlDeliveries
from bot.infra.db.engine import make_sessionmaker
from bot.infra.db.tables import LedgerRow
from bot.slack.app import UNEXPECTED_ERROR
from bot.slack.clients import ResponseUrlSession
from bot.slack.listeners import LISTENERS
from bot.slack.once import ACKED_FIRST, MAX_KEY_LENGTH, Delivery, delivery_of, install_once_only, once_only
from tests.bolt_tasks import settle_listeners
from tests.fakes.slack_signing import (
    app_mention_event,
    block_actions,
    event_callback,
    message_shortcut,
    slash_command,
)
from tests.slack.button_values import stored_button

RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
MESSAGE = {"type": "message", "user": "U2", "ts": "1700000000.000500", "text": "can u send the report pls"}


# --- keys (unit) --------------------------------------------------------------


def test_each_kind_of_delivery_is_keyed_as_its_listener_keys_its_model_calls():
    assert delivery_of({"type": "event_callback", "event_id": "Ev1", "event": {}}) == Delivery("event:Ev1", "event")
    assert delivery_of({"command": "/rewrite", "trigger_id": "1.2.a"}) == Delivery("command:1.2.a", "command")
    for kind in ("block_actions", "message_action", "shortcut", "view_submission"):
        assert delivery_of({"type": kind, "trigger_id": "3.4.b"}) == Delivery("action:3.4.b", kind)


def test_a_button_click_without_a_trigger_id_is_keyed_by_message_action_and_time():
    body = {
        "type": "block_actions",
        "container": {"type": "message", "message_ts": "1700.1"},
        "actions": [{"action_id": "rewrite_post", "action_ts": "1700.2"}],
    }
    assert delivery_of(body) == Delivery("action:1700.1:rewrite_post:1700.2", "block_actions")
    assert delivery_of(body | {"actions": [{"action_id": "rewrite_post"}]}) is None


def test_handshakes_and_options_loads_are_not_deduplicated():
    assert delivery_of({"type": "url_verification", "challenge": "x"}) is None
    assert delivery_of({"type": "block_suggestion", "action_id": "a", "value": "q"}) is None
    assert delivery_of({"type": "view_closed", "view": {"id": "V1"}}) is None
    assert delivery_of({"type": "event_callback", "event": {}}) is None


def test_an_overlong_key_is_hashed_to_fit_the_column():
    long = delivery_of({"command": "/rewrite", "trigger_id": "9" * 400})
    other = delivery_of({"command": "/rewrite", "trigger_id": "9" * 399 + "8"})
    assert long.key.startswith("command:sha256:") and len(long.key) <= MAX_KEY_LENGTH
    assert long.key != other.key


class _DatabaseDown:
    """Claims whose database went away after the claim (unit test of marking done)."""

    async def claim(self, key: str, *, team_id: str | None, kind: str) -> int | None:
        return 1

    async def finish(self, key: str) -> None:
        raise OperationalError("UPDATE slack_deliveries", {}, ConnectionResetError())


async def test_failing_to_mark_done_is_logged_by_type_and_does_not_raise(caplog):
    app = _command_app(_DatabaseDown(), [], [])
    caplog.set_level("INFO", logger="bot.slack.once")

    await _dispatch_command(app, "1.2.EvX")
    await settle_listeners()

    [record] = [r for r in caplog.records if r.name == "bot.slack.once"]
    assert record.levelname == "WARNING" and "OperationalError" in record.getMessage()
    assert "EvX" not in record.getMessage()


def test_each_command_claimed_beside_its_ack_acks_before_anything_else():
    # Its claim is still in flight while the listener runs up to ack(): nothing may happen before it.
    commands = {matcher: listener for method, matcher, listener in LISTENERS if method == "command"}
    for name in ACKED_FIRST:
        tree = ast.parse(textwrap.dedent(inspect.getsource(commands[name])))
        awaits = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Await)), key=lambda n: (n.lineno, n.col_offset))
        first = awaits[0].value
        assert isinstance(first, ast.Call) and isinstance(first.func, ast.Name) and first.func.id == "ack", name
    assert "/frugal" not in ACKED_FIRST, "admin subcommands write before they ack"


class _HeldClaims:
    """Claims the test decides: each waits until released, then answers ``outcome`` (or raises it)."""

    def __init__(self, outcome: int | None | Exception, log: list[str] | None = None) -> None:
        self.outcome = outcome
        self.release = asyncio.Event()
        self.finished: list[str] = []
        self.log = log if log is not None else []

    async def claim(self, key: str, *, team_id: str | None, kind: str) -> int | None:
        await self.release.wait()
        self.log.append("claim decided")
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    async def finish(self, key: str) -> None:
        self.finished.append(key)


def _command_app(claims, worked: list[str], errors: list[Exception], *, fail: Exception | None = None) -> AsyncApp:
    async def authorize(**_: object) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None, team_id="T0001", bot_token="xoxb-unit", bot_user_id="UBOT", bot_id="B1"
        )

    async def on_error(error: Exception, respond=None) -> None:
        errors.append(error)

    app = AsyncApp(signing_secret="s", authorize=authorize, request_verification_enabled=False)
    app.error(on_error)
    install_once_only(app, claims)

    # No `context` parameter: the wrapper asks Bolt for it on its own.
    async def listener(ack, command) -> None:
        await ack(text="working on it")
        worked.append(command["trigger_id"])
        if fail is not None:
            raise fail

    app.command("/rewrite")(once_only(listener, report=on_error))
    return app


async def _dispatch_command(app: AsyncApp, trigger_id: str):
    body, content_type = slash_command("/rewrite", "send it pls", trigger_id=trigger_id)
    return await app.async_dispatch(AsyncBoltRequest(body=body, headers={"content-type": [content_type]}))


async def test_a_command_is_acknowledged_before_its_claim_is_decided():
    log: list[str] = []
    claims, worked, errors = _HeldClaims(outcome=1, log=log), log, []
    app = _command_app(claims, worked, errors)

    # Bounded, so an ack that waited for the claim fails here instead of hanging the suite.
    response = await asyncio.wait_for(_dispatch_command(app, "1.2.held"), timeout=10)

    # The ack is out while the claim is held: the listener has acked and now waits in its ack().
    assert (response.status, response.body) == (200, "working on it")
    claims.release.set()
    await settle_listeners()
    assert log == ["claim decided", "1.2.held"], "nothing after the ack runs before the claim is won"
    assert (claims.finished, errors) == (["command:1.2.held"], [])


async def test_a_command_whose_claim_is_lost_is_acknowledged_and_does_nothing(caplog):
    claims, worked, errors = _HeldClaims(outcome=None), [], []
    claims.release.set()  # decided at once: Bolt must still send the ack the listener gave
    app = _command_app(claims, worked, errors)
    caplog.set_level("INFO", logger="bot.slack.once")

    response = await _dispatch_command(app, "1.2.lost")

    assert (response.status, response.body) == (200, "working on it")
    await settle_listeners()
    assert worked == [] and claims.finished == [] and errors == []
    assert "duplicate command delivery dropped" in caplog.text


async def test_a_listener_that_raises_still_has_its_delivery_marked_done():
    claims, worked, errors = _HeldClaims(outcome=1), [], []
    claims.release.set()
    app = _command_app(claims, worked, errors, fail=RuntimeError("listener bug"))

    response = await _dispatch_command(app, "1.2.bug")

    assert (response.status, response.body) == (200, "working on it")
    await settle_listeners()
    assert worked == ["1.2.bug"] and claims.finished == ["command:1.2.bug"]
    assert [type(e) for e in errors] == [RuntimeError], "the error handler still hears of it"


async def test_a_claim_that_fails_still_sends_the_ack_and_reaches_the_error_handler():
    claims, worked, errors = _HeldClaims(outcome=OperationalError("INSERT", {}, ConnectionResetError())), [], []
    claims.release.set()
    app = _command_app(claims, worked, errors)

    response = await _dispatch_command(app, "1.2.down")

    assert response.status == 200
    await settle_listeners()
    assert worked == [] and claims.finished == []
    assert [type(e) for e in errors] == [OperationalError]


# --- helpers -------------------------------------------------------------------


async def _deliveries(frugal) -> list[DeliveryRow]:
    async with make_sessionmaker(frugal.container.engine)() as session:
        return list(await session.scalars(select(DeliveryRow)))


async def _ledger(frugal) -> list[LedgerRow]:
    async with make_sessionmaker(frugal.container.engine)() as session:
        return list(await session.scalars(select(LedgerRow)))


async def _settled(frugal, count: int = 1) -> list[DeliveryRow]:
    """Wait until `count` deliveries are marked done, then for every listener left, so a wrongly started second run shows."""
    for _ in range(500):
        rows = await _deliveries(frugal)
        if sum(row.state == "done" for row in rows) >= count:
            await settle_listeners()
            return await _deliveries(frugal)
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries not done: {[(r.key, r.state) for r in await _deliveries(frugal)]}")


async def _post_all(frugal, body: str, content_type: str, headers: list[dict[str, str] | None]) -> list[int]:
    responses = await asyncio.gather(*(frugal.post(body, content_type, headers=h) for h in headers))
    return [r.status for r in responses]


# --- events --------------------------------------------------------------------


async def test_a_retried_mention_is_answered_once(frugal, fake_openai, fake_slack):
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite can u send it pls"), event_id="EvONCE1")

    first = await frugal.post(body, content_type)
    await fake_slack.await_calls("chat.postMessage")
    retry = await frugal.post(body, content_type, headers=RETRY)

    assert (first.status, retry.status) == (200, 200)
    [row] = await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    [charge] = await _ledger(frugal)
    assert (charge.outcome, charge.request_key) == ("ok", "event:EvONCE1")
    assert (row.key, row.kind, row.team_id, row.state, row.claims) == ("event:EvONCE1", "event", "T0001", "done", 1)


async def test_a_retry_arriving_while_the_first_is_still_answered_is_dropped(frugal, fake_openai, fake_slack):
    fake_openai.latency = 1.0
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite slow one"), event_id="EvSLOW")

    await frugal.post(body, content_type)
    retry = await frugal.post(body, content_type, headers=RETRY)
    [claimed] = await _deliveries(frugal)

    assert retry.status == 200
    assert claimed.state == "claimed", "the first delivery is still being answered"
    await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_concurrent_duplicate_events_give_one_answer(frugal, fake_openai, fake_slack):
    body, content_type = event_callback(app_mention_event("<@UBOT> classify [bug, idea] it crashes"))

    statuses = await _post_all(frugal, body, content_type, [None, RETRY, None, RETRY, None])

    assert statuses == [200] * 5
    await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert [row.outcome for row in await _ledger(frugal)] == ["ok"]


async def test_two_replicas_on_one_database_answer_an_event_once(start_frugal, migrated_url, fake_openai, fake_slack):
    replicas = [await start_frugal(migrated_url), await start_frugal(migrated_url)]
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite two replicas"), event_id="EvREPLICAS")

    responses = await asyncio.gather(
        *(replica.post(body, content_type, headers=headers) for replica in replicas for headers in (None, RETRY))
    )

    assert [r.status for r in responses] == [200] * 4
    [row] = await _settled(replicas[0])
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert [charge.outcome for charge in await _ledger(replicas[1])] == ["ok"]
    assert (row.state, row.claims) == ("done", 1)


async def test_a_retry_takes_over_a_delivery_whose_process_died(frugal, fake_openai, fake_slack):
    # A replica claimed the event, then died before answering: its lease ran out long ago.
    died_at = datetime.now(timezone.utc) - LEASE - timedelta(seconds=30)
    dead_replica = SqlDeliveries(frugal.container.engine, clock=lambda: died_at)
    assert await dead_replica.claim("event:EvCRASH", team_id="T0001", kind="event") == 1
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite after a crash"), event_id="EvCRASH")

    retry = await frugal.post(body, content_type, headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "x"})

    assert retry.status == 200
    await fake_slack.await_calls("chat.postMessage")
    [row] = await _settled(frugal)
    assert (row.state, row.claims, row.first_seen_at) == ("done", 2, died_at)
    assert len(fake_openai.requests) == 1


async def test_a_retry_is_dropped_while_another_replica_holds_the_lease(frugal, fake_openai, fake_slack):
    busy_replica = SqlDeliveries(frugal.container.engine)
    assert await busy_replica.claim("event:EvBUSY", team_id="T0001", kind="event") == 1
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite busy elsewhere"), event_id="EvBUSY")

    retry = await frugal.post(body, content_type, headers=RETRY)

    assert retry.status == 200
    await settle_listeners()
    assert fake_openai.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []
    [row] = await _deliveries(frugal)
    assert (row.state, row.claims) == ("claimed", 1)


# --- slash commands and interactions ----------------------------------------------


async def test_a_slash_command_posted_twice_is_answered_once(frugal, fake_openai, fake_slack):
    url = fake_slack.response_url("twice")
    body, content_type = slash_command("/rewrite", "formal: send it pls", trigger_id="111.222.twice", response_url=url)

    first = await frugal.post(body, content_type)
    await fake_slack.await_calls("response_url:twice")
    second = await frugal.post(body, content_type)

    assert (first.status, second.status) == (200, 200)
    [row] = await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("response_url:twice")) == 1
    assert (row.key, row.kind, row.state) == ("command:111.222.twice", "command", "done")
    [charge] = await _ledger(frugal)
    assert (charge.outcome, charge.request_key) == ("ok", "command:111.222.twice")


async def test_concurrent_duplicate_commands_give_one_answer(frugal, fake_openai, fake_slack):
    url = fake_slack.response_url("burst")
    body, content_type = slash_command("/classify", "[bug, idea] it crashes", response_url=url)

    statuses = await _post_all(frugal, body, content_type, [None] * 4)

    assert statuses == [200] * 4
    await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("response_url:burst")) == 1


async def test_a_duplicated_button_click_rewrites_once(frugal, fake_openai, fake_slack):
    url = fake_slack.response_url("style")
    value = await stored_button(frugal, "x", original="the original")
    body, content_type = block_actions("rewrite_style_formal", value, trigger_id="333.444.c", response_url=url)

    statuses = await _post_all(frugal, body, content_type, [None, None])

    assert statuses == [200, 200]
    [row] = await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("response_url:style")) == 1
    assert (row.key, row.kind) == ("action:333.444.c", "block_actions")


async def test_a_duplicated_message_shortcut_answers_once(frugal, fake_openai, fake_slack):
    url = fake_slack.response_url("sc")
    body, content_type = message_shortcut("rewrite_message", MESSAGE, trigger_id="555.666.d", response_url=url)

    statuses = await _post_all(frugal, body, content_type, [None, None, None])

    assert statuses == [200] * 3
    await _settled(frugal)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("response_url:sc")) == 1


async def test_each_distinct_delivery_is_still_answered(frugal, fake_openai, fake_slack):
    for n in range(3):
        await frugal.command("/rewrite", f"note number {n}")
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite hello"))
    await frugal.post(body, content_type)

    await _settled(frugal, count=4)
    assert len(fake_openai.requests) == 4


# --- failures -----------------------------------------------------------------------


async def test_a_database_error_while_claiming_fails_visibly_and_calls_no_model(frugal, fake_openai, fake_slack):
    async with frugal.container.engine.begin() as conn:
        await conn.execute(text("DROP TABLE slack_deliveries"))
    url = fake_slack.response_url("broken")
    body, content_type = slash_command("/rewrite", "can u send it pls", response_url=url)

    response = await frugal.post(body, content_type)

    assert response.status == 200, "a command is acknowledged while it is claimed; Slack never retries one"
    [told] = await fake_slack.await_calls("response_url:broken")
    assert told.params["text"] == UNEXPECTED_ERROR
    event_body, event_type = event_callback(app_mention_event("<@UBOT> rewrite hi"))
    assert (await frugal.post(event_body, event_type)).status == 500, "Slack retries an event it got an error for"
    await settle_listeners()
    assert fake_openai.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_delivery_whose_listener_raised_is_done_and_its_retry_dropped(frugal, fake_openai, fake_slack):
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "channel_not_found"})
    body, content_type = event_callback(app_mention_event("<@UBOT> rewrite into a gone channel"), event_id="EvGONE")

    await frugal.post(body, content_type)
    [row] = await _settled(frugal)
    retry = await frugal.post(body, content_type, headers=RETRY)

    assert retry.status == 200
    await settle_listeners()
    assert (row.key, row.state) == ("event:EvGONE", "done")
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_old_deliveries_are_purged_by_a_daily_job(frugal):
    long_ago = datetime.now(timezone.utc) - RETENTION - timedelta(minutes=1)
    old = SqlDeliveries(frugal.container.engine, clock=lambda: long_ago)
    await old.claim("event:EvOLD", team_id="T0001", kind="event")
    await frugal.command("/rewrite", "a fresh request")
    await _settled(frugal)

    [purge] = [job for job in frugal.container.daily_jobs if job.__qualname__ == "SqlDeliveries.purge"]

    assert await purge() == 1
    assert [row.kind for row in await _deliveries(frugal)] == ["command"]


async def test_a_socket_mode_event_sent_twice_is_answered_once(frugal, fake_openai, fake_slack):
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(frugal.container.bolt, "xapp-1-A0001-1-test")
    body, _ = event_callback(app_mention_event("<@UBOT> rewrite over the socket"), event_id="EvSOCKET")
    try:
        await handler.connect_async()
        await fake_slack.await_calls("socket_connect")
        sent = [fake_slack.socket_send("events_api", json.loads(body)) for _ in range(2)]
        acks = await fake_slack.await_calls("socket_ack", count=2)
        [row] = await _settled(frugal)
    finally:
        await handler.close_async()

    assert sorted(ack.params["envelope_id"] for ack in acks) == sorted(sent)
    assert len(fake_openai.requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert (row.key, row.state) == ("event:EvSOCKET", "done")


async def test_stopping_frugal_closes_the_claims_pool_and_the_reply_session(frugal, fake_openai, fake_slack):
    _, name = await frugal.command("/rewrite", "formal: send it pls")
    await fake_slack.await_calls(f"response_url:{name}")
    await _settled(frugal)
    owners = [close.__self__ for close in frugal.container.closers]
    [deliveries] = [owner for owner in owners if isinstance(owner, SqlDeliveries)]
    [responses] = [owner for owner in owners if isinstance(owner, ResponseUrlSession)]
    session = responses.get()
    # On SQLite claims are written by the file's writer (bot/infra/db/sqlite_writers.py): no pool of their own.
    claim_pool = deliveries._claim_engine.pool if deliveries._claim_engine is not None else None
    if claim_pool is not None:
        assert claim_pool.checkedin() >= 1, "the command was claimed on the claims' own pool"

    await frugal.container.aclose()

    assert session.closed and responses.get() is None
    if claim_pool is not None:
        assert claim_pool.checkedin() == 0
