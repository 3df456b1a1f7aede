"""PostgreSQL restarting mid-run (through a proxy, so the real server keeps serving others): clear errors, recovery."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy.engine import make_url

from bot.infra.db.migrate import upgrade
from bot.ports.quota_store import Scope
from bot.services.quota_spec import parse_limit
from bot.slack.app import UNEXPECTED_ERROR
from tests.conftest import postgres_database
from tests.fakes.slack_signing import app_mention_event, event_callback
from tests.faults.conftest import ledger_rows, settle_listeners
from tests.faults.process import books, chat_calls, until
from tests.faults.tcp_proxy import RestartableProxy

DOWN_FOR_S = 3.0
CUT_MID_CALL = 5


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A migrated throwaway PostgreSQL database (this fault only exists on a database server)."""
    async with postgres_database() as url:
        await upgrade(url)
        yield url


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[RestartableProxy]:
    url = make_url(postgres_url)
    proxy = RestartableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.close()


def through(url: str, proxy: RestartableProxy) -> str:
    """The same database, reached through the proxy."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


async def health(frugal) -> int:
    async with frugal.http.get(f"{frugal.url}/healthz") as resp:
        await resp.read()
        return resp.status


class Traffic:
    """A steady stream of /rewrite commands, each remembered with the phase it was sent in."""

    def __init__(self, frugal) -> None:
        self.frugal = frugal
        self.phase = "up"
        self.sent: list[tuple[str, str, str]] = []  # (trigger_id, response name, phase)
        self.acks: list[tuple[str, int]] = []  # (phase, HTTP status)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def replied(self, phase: str, answered: bool) -> int:
        """How many requests sent in ``phase`` got their reply: the model's answer, or else the clear error."""
        slack = self.frugal.fake_slack
        wanted = (lambda text: text.startswith("[gpt-4.1-nano] message ")) if answered else UNEXPECTED_ERROR.__eq__
        return sum(
            1
            for _, name, sent_in in list(self.sent)
            if sent_in == phase and any(wanted(call.params["text"]) for call in slack.calls_to(f"response_url:{name}"))
        )

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            phase = self.phase
            trigger = f"{i}.{uuid.uuid4().hex[:8]}.restart"
            response, name = await self.frugal.command("/rewrite", f"message {i}", trigger_id=trigger)
            if self.phase != phase:
                phase = "transition"  # the database changed state while this request was being acked
            self.acks.append((phase, response.status))
            self.sent.append((trigger, name, phase))
            i += 1
            await asyncio.sleep(0.05)


async def test_postgres_restart_mid_run(postgres_url, proxy, start_frugal, fake_openai, fake_slack):
    # The proxy comes before start_frugal, so it is closed after Frugal: whatever is kept drains at teardown.
    frugal = await start_frugal(through(postgres_url, proxy))
    fake_openai.latency = 0.02
    traffic = Traffic(frugal)
    traffic.start()
    await until(lambda: traffic.replied("up", answered=True) >= 5, 20, "5 answers before the cut")
    assert await health(frugal) == 200

    traffic.phase = "cutting"
    await proxy.go_down()
    traffic.phase = "down"
    # Health is asked once the outage has been met by a request, and again after several more.
    await until(lambda: traffic.replied("down", answered=False) >= 1, 20, "a request told of the outage")
    health_while_down = [await health(frugal)]
    await until(lambda: traffic.replied("down", answered=False) >= 5, 20, "5 requests told of the outage")
    health_while_down.append(await health(frugal))
    traffic.phase = "restarting"
    await proxy.come_back()

    # Recovery without restarting Frugal: the pool drops its dead connections and opens new ones.
    statuses: list[int] = []

    async def healthy() -> bool:
        statuses.append(await health(frugal))
        return statuses[-1] == 200

    for _ in range(100):
        if await healthy():
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == 200, statuses
    traffic.phase = "back"
    await until(lambda: traffic.replied("back", answered=True) >= 5, 20, "5 answers once back")
    await traffic.stop()

    assert health_while_down == [503, 503]
    # Up and back, every request is acked at once. While down, the once-only claim cannot be stored, so
    # Bolt answers 500 after its error handler has told the user (below); Slack retries events then.
    assert {status for phase, status in traffic.acks if phase in ("up", "back")} == {200}
    assert {status for phase, status in traffic.acks} <= {200, 500}
    replies = {}
    for trigger, name, phase in traffic.sent:
        [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
        replies[trigger] = (phase, reply.params["text"])
    await settle_listeners()  # every listener has returned: no second reply can come after this
    for _, name, _ in traffic.sent:
        assert len(fake_slack.calls_to(f"response_url:{name}")) == 1, "a request was answered twice"

    answered = {t for t, (_, text) in replies.items() if text.startswith("[gpt-4.1-nano] message ")}
    failed = {t for t, (_, text) in replies.items() if text == UNEXPECTED_ERROR}
    odd = [(phase, text) for t, (phase, text) in replies.items() if t not in answered | failed]
    assert odd == [], "every reply is an answer or the clear error"
    by_phase = Counter((phase, t in answered) for t, (phase, _) in replies.items())
    assert by_phase[("up", True)] >= 5 and by_phase[("back", True)] >= 5
    assert by_phase[("down", False)] >= 5, "requests while the database is down are told so"
    assert by_phase[("down", True)] == 0 and by_phase[("back", False)] == 0, by_phase

    # Every answered request has exactly one ledger row; none is ever doubled. Rows kept in memory through
    # the outage are written at the writer's next try once the database is back (its waits grow to 2 s).
    for _ in range(100):
        rows = await ledger_rows(frugal)
        ok_per_key = Counter(r.request_key for r in rows if r.outcome == "ok")
        if all(ok_per_key[f"command:{t}"] for t in answered):
            break
        await asyncio.sleep(0.1)
    assert all(ok_per_key[f"command:{t}"] == 1 for t in answered)
    assert max(ok_per_key.values()) == 1
    assert proxy.accepted > 1


async def _send(frugal, kind: str, i: int) -> tuple[str, str]:
    """One request of ``kind`` in flight; its request key and where its answer goes (a response_url, or the thread)."""
    tag = f"{i}.{uuid.uuid4().hex[:8]}.cut"
    if kind == "mention":
        body, content_type = event_callback(app_mention_event(f"<@UBOT> rewrite paid answer {i}"), event_id=f"Ev{tag}")
        response = await frugal.post(body, content_type)
        where = "chat.postMessage"
        key = f"event:Ev{tag}"
    else:
        text = f"paid answer {i}" if kind == "/rewrite" else f"[bug, idea] paid answer {i}"
        response, name = await frugal.command(kind, text, trigger_id=tag)
        where = f"response_url:{name}"
        key = f"command:{tag}"
    assert response.status == 200
    return key, where


# Each still writes after its model call, on its answer's path: the buttons' text (/rewrite, shown without
# buttons while the database is away), the classify cache (not remembered), the ledger and the quota (kept).
@pytest.mark.parametrize("kind", ["/rewrite", "/classify", "mention"])
async def test_a_cut_mid_request_delivers_the_paid_answers_and_records_them_once_back(
    kind, postgres_url, proxy, start_frugal, fake_openai, fake_slack
):
    # The proxy comes before start_frugal, so it is closed after Frugal: whatever is kept drains at teardown.
    frugal = await start_frugal(through(postgres_url, proxy))
    await frugal.container.quota.set_limit(
        "T0001", Scope.CHANNEL, "C0001", parse_limit("1000 requests/day"), set_by="U9"
    )
    fake_openai.latency = 1.0
    sent = await asyncio.gather(*(_send(frugal, kind, i) for i in range(CUT_MID_CALL)))
    await until(lambda: chat_calls(fake_openai) == CUT_MID_CALL, 10, "every model call started")

    await proxy.go_down()
    # The model answers while the database is away: the answers, already paid for, are delivered.
    places = {where for _, where in sent}
    replies = [
        call.params["text"]
        for where in places
        for call in await fake_slack.await_calls(where, CUT_MID_CALL // len(places), timeout=10)
    ]
    during = await books(postgres_url)  # past the proxy: the server itself never went away
    await asyncio.sleep(DOWN_FOR_S - 1.0)
    await proxy.come_back()

    assert len(replies) == CUT_MID_CALL
    assert [text for text in replies if "went wrong" in text] == []
    if kind != "/classify":
        assert sorted(replies) == sorted(f"[gpt-4.1-nano] paid answer {i}" for i in range(CUT_MID_CALL))
    assert (during.rows, during.holds) == ([], CUT_MID_CALL), "rows and settlements wait in memory"
    for _ in range(100):
        after = await books(postgres_url)
        if len(after.rows) >= CUT_MID_CALL and after.holds == 0:
            break
        await asyncio.sleep(0.1)
    assert Counter((row.request_key, row.outcome) for row in after.rows) == {(key, "ok"): 1 for key, _ in sent}
    assert (after.used, after.reserved, after.holds) == (Decimal(CUT_MID_CALL), 0, 0)
    assert chat_calls(fake_openai) == CUT_MID_CALL
