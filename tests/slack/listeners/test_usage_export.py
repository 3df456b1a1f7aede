"""/frugal usage export [YYYY-MM] end to end: a signed command in, the month's CSV uploaded to the admin's DM."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.ports.ledger import LedgerEntry
from bot.ports.quota import Period
from bot.services.quota_spec import period_start
from bot.slack.grammar import HELP
from bot.slack.listeners.usage_export import USAGE
from tests.bolt_tasks import settle_listeners
from tests.fakes.slack_server import dm_channel

ADMIN = "UADMIN1"
MEMBER = "UMEMBER1"


@pytest.fixture
def admins(fake_slack):
    """users.info says ADMIN is a workspace admin; everyone else is a plain member."""
    fake_slack.users[ADMIN] = {"is_admin": True}
    return fake_slack


def _call(
    at: datetime,
    *,
    channel: str = "C0001",
    user: str = "U1",
    model: str = "gpt-4.1-nano",
    cost: str | None = "0.000165",
) -> LedgerEntry:
    return LedgerEntry(
        team_id="T0001",
        channel_id=channel,
        user_id=user,
        request_key=f"k-{at.isoformat()}-{channel}-{user}",
        task="rewrite",
        requested_model=model,
        served_model=model,
        prompt_tokens=1000,
        cached_tokens=200,
        completion_tokens=300,
        reasoning_tokens=100,
        cache_write_tokens=0,
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=Decimal("0.004"),
        energy_wh=None,
        latency_ms=3.0,
        outcome="ok",
        error_code=None,
        attempt=1,
        created_at=at,
    )


async def _seed(url: str, entries: list[LedgerEntry]) -> None:
    engine = make_engine(url)
    try:
        ledger = SqlLedger(make_sessionmaker(engine))
        for entry in entries:
            await ledger.record(entry)
    finally:
        await engine.dispose()


async def _export(frugal, text: str, *, user: str = ADMIN) -> str:
    response, _ = await frugal.command("/frugal", text, user_id=user, channel_id="C0001")
    assert response.status == 200
    return (await response.json())["text"]


def _uploaded_csv(fake_slack, call) -> list[dict[str, str]]:
    files = call.params["files"]
    (file,) = json.loads(files) if isinstance(files, str) else files
    return list(csv.DictReader(io.StringIO(fake_slack.uploads[file["id"]].decode())))


async def test_an_admin_gets_this_months_csv_in_a_dm(frugal, admins, migrated_url):
    now = datetime.now(UTC)
    month_start = period_start(Period.MONTH, now, UTC)
    await _seed(
        migrated_url,
        [
            _call(now - timedelta(minutes=2)),
            _call(now - timedelta(minutes=1), channel="C0002", user="U2", model="my-local-model", cost=None),
            _call(month_start - timedelta(minutes=1)),  # last month
        ],
    )

    answer = await _export(frugal, "usage export")

    assert answer == "Exporting this month's usage as a CSV file; it comes to you in a direct message."
    (complete,) = await admins.await_calls("files.completeUploadExternal")
    (message,) = admins.calls_to("chat.postMessage")
    assert message.params["channel"] == ADMIN
    assert message.params["text"].startswith(f"Frugal's usage for {now:%Y-%m} (UTC): 2 rows, one per day")
    assert complete.params["channel_id"] == dm_channel(ADMIN)
    (get_url,) = admins.calls_to("files.getUploadURLExternal")
    assert get_url.params["filename"] == f"frugal-usage-{now:%Y-%m}.csv"
    rows = _uploaded_csv(admins, complete)
    assert [
        (r["x_ChannelId"], r["x_UserId"], r["ResourceId"], r["BilledCost"], r["x_Requests"], r["x_ReasoningTokens"])
        for r in rows
    ] == [("C0001", "U1", "gpt-4.1-nano", "0.000165", "1", "100"), ("C0002", "U2", "my-local-model", "", "1", "100")]
    assert {r["x_Date"] for r in rows} == {f"{now:%Y-%m-%d}"}


async def test_a_named_month_is_that_whole_month_in_frugal_timezone(start_frugal, admins, migrated_url):
    frugal = await start_frugal(migrated_url, FRUGAL_TIMEZONE="Europe/Paris")
    now = datetime.now(UTC)
    this_month = period_start(Period.MONTH, now, frugal.container.settings.timezone)
    last_month = period_start(Period.MONTH, this_month - timedelta(days=1), frugal.container.settings.timezone)
    await _seed(
        migrated_url,
        [
            _call(last_month - timedelta(minutes=1), user="U-before"),  # the month before, in Paris
            _call(last_month, user="U-first"),
            _call(this_month - timedelta(seconds=1), user="U-last"),
            _call(this_month, user="U-after"),
        ],
    )
    name = f"{last_month.astimezone(frugal.container.settings.timezone):%Y-%m}"

    answer = await _export(frugal, f"usage export {name}")

    assert answer == f"Exporting {name}'s usage as a CSV file; it comes to you in a direct message."
    (complete,) = await admins.await_calls("files.completeUploadExternal")
    assert [r["x_UserId"] for r in _uploaded_csv(admins, complete)] == ["U-first", "U-last"]
    assert admins.calls_to("files.getUploadURLExternal")[0].params["filename"] == f"frugal-usage-{name}.csv"


async def test_a_member_is_refused_and_nothing_is_sent(frugal, admins):
    answer = await _export(frugal, "usage export", user=MEMBER)
    await settle_listeners()

    assert answer == "Only Frugal admins and workspace admins can do that."
    assert not admins.calls_to("chat.postMessage") and not admins.calls_to("files.getUploadURLExternal")


@pytest.mark.parametrize(
    "text",
    [
        "usage export 2026-13",
        "usage export 26-11",
        "usage export november",
        "usage export 2026-11 extra",
        "usage",
        "usage import",
    ],
)
async def test_bad_words_get_the_usage_line_and_nothing_is_sent(frugal, admins, text):
    answer = await _export(frugal, text)
    await settle_listeners()

    assert answer.endswith(USAGE)
    assert not admins.calls_to("users.info")  # refused before anything is looked up
    assert not admins.calls_to("chat.postMessage") and not admins.calls_to("files.getUploadURLExternal")


async def test_a_refused_upload_is_said_in_plain_words(frugal, admins):
    admins.fail("files.getUploadURLExternal", status=200, headers={}, body={"ok": False, "error": "not_allowed"})

    response, name = await frugal.command("/frugal", "usage export", user_id=ADMIN, channel_id="C0001")

    assert response.status == 200
    (said,) = await admins.await_calls(f"response_url:{name}")
    assert said.params["text"] == "I couldn't send you the export: Slack refused it. Try again in a few minutes."
    assert said.params["response_type"] == "ephemeral"
    assert not admins.calls_to("files.completeUploadExternal")


def test_help_names_the_export():
    assert "`/frugal usage export [YYYY-MM]`" in HELP
