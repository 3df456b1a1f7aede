"""`frugal usage`: the per-channel, per-model table from a seeded ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.commands.usage import BadSince, parse_since
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.ports.ledger import LedgerEntry
from bot.ports.quota import Period
from bot.services.quota_spec import period_start

NOW = datetime.now(UTC)


def _entry(
    channel: str,
    model: str,
    *,
    ago: timedelta,
    cost: str | None,
    tokens: tuple[int, int, int] = (1000, 200, 100),
    outcome: str = "ok",
    team: str = "T1",
    baseline: str | None = None,
    at: datetime | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        team_id=team,
        channel_id=channel,
        user_id="U1",
        request_key=f"k-{channel}-{ago}",
        task="rewrite",
        requested_model=model,
        served_model=model if outcome == "ok" else None,
        prompt_tokens=tokens[0],
        cached_tokens=tokens[1],
        completion_tokens=tokens[2],
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=Decimal(baseline) if baseline is not None else None,
        energy_wh=None,
        latency_ms=3.0,
        outcome=outcome,
        error_code=None if outcome == "ok" else "timeout",
        attempt=1,
        created_at=at or NOW - ago,
    )


def _seed(url: str, entries: list[LedgerEntry]) -> None:
    async def run() -> None:
        engine = make_engine(url)
        try:
            ledger = SqlLedger(make_sessionmaker(engine))
            for entry in entries:
                await ledger.record(entry)
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def run_usage(migrated_url, monkeypatch, tmp_path, capsys):
    """Run `frugal usage ARGS` in-process against the seeded database; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for name in list(os.environ):
        if name.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", migrated_url)

    def run(*args: str, seed: list[LedgerEntry] = (), tz: str = "UTC") -> tuple[int, str, str]:
        monkeypatch.setenv("FRUGAL_TIMEZONE", tz)
        _seed(migrated_url, list(seed))
        code = main(["usage", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_table_per_channel_and_model_with_totals(run_usage):
    code, out, err = run_usage(
        "--since",
        "2d",
        seed=[
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="0.000165", baseline="0.004"),
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=2), cost="0.000165", baseline="0.004"),
            _entry("C0001", "gpt-4o-mini", ago=timedelta(hours=3), cost="0.012"),
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=4), cost=None, tokens=(0, 0, 0), outcome="error"),
            _entry("C0002", "my-local-model", ago=timedelta(hours=5), cost=None, tokens=(10, 0, 5)),
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(days=3), cost="9"),  # before --since
        ],
    )

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Usage of every channel from ") and lines[0].endswith("(UTC)")
    table = [line.split("  ") for line in lines[2:]]
    cells = [[c.strip() for c in row if c.strip()] for row in table if row and not row[0].startswith("─")]
    assert cells[0] == ["Channel", "Model", "Requests", "Tokens in", "Cached", "Tokens out", "Cost", "Failed"]
    assert cells[1] == ["C0001", "gpt-4o-mini", "1", "1,000", "200", "100", "$0.012", "0"]
    assert cells[2] == ["C0001", "gpt-4.1-nano", "2", "2,000", "400", "200", "$0.00033", "1"]
    assert cells[3] == ["C0002", "my-local-model", "1", "10", "0", "5", "price unknown", "0"]
    assert cells[4] == ["Total", "4", "3,010", "600", "305", "$0.0123 + 1 unpriced", "1"]
    assert "1 answered requests used a model with no known price" in out
    assert "Saved $0.00767 against the baseline model" in out


def test_columns_line_up(run_usage):
    _, out, _ = run_usage(
        "--since",
        "1w",
        seed=[
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="1234.5", tokens=(1_234_567, 0, 1)),
            _entry("C0002222", "gpt-4o-mini", ago=timedelta(hours=1), cost="0.01"),
        ],
    )

    rows = [line for line in out.splitlines()[2:] if line and not line.startswith("Saved")]
    # Right-aligned numbers: every row's Cost column ends at the same place as the header's.
    header = rows[0]
    cost_end = header.index("Cost") + len("Cost")
    for row in rows[2:]:
        if not row.startswith("─"):
            assert row[:cost_end].rstrip() == row[:cost_end], row
            assert row[cost_end : cost_end + 2] == "  ", row


def test_channel_filter_and_default_period_is_this_month(run_usage):
    month_start = period_start(Period.MONTH, NOW, ZoneInfo("UTC"))
    code, out, _ = run_usage(
        "--channel",
        "C0002",
        seed=[
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(seconds=30), cost="0.5"),
            _entry("C0002", "gpt-4.1-nano", ago=timedelta(seconds=30), cost="0.25"),
            _entry("C0002", "gpt-4.1-nano", ago=timedelta(0), at=month_start - timedelta(minutes=1), cost="7"),
        ],
    )

    assert code == 0
    assert f"Usage of channel C0002 from {month_start:%Y-%m-%d %H:%M} to " in out
    assert "C0001" not in out
    assert " $0.25 " in out and "$7" not in out


def test_several_workspaces_get_a_team_column(run_usage):
    _, out, _ = run_usage(
        "--since",
        "1d",
        seed=[
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="0.01", team="T1"),
            _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="0.02", team="T2"),
        ],
    )

    header = out.splitlines()[2].split()
    assert header[:2] == ["Team", "Channel"]
    assert [line.split()[0] for line in out.splitlines()[4:6]] == ["T2", "T1"]


def test_no_requests_says_so(run_usage):
    code, out, _ = run_usage("--since", "12h")

    assert code == 0
    assert out.splitlines()[1] == "No requests in this period."


@pytest.mark.parametrize("bad", ["7x", "d", "0d", "-3d", "7 days", "99999w"])
def test_bad_since_is_one_line_and_exit_2(run_usage, bad):
    code, out, err = run_usage(f"--since={bad}")

    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("frugal: --since: ")


def test_bad_channel_is_one_line_and_exit_2(run_usage):
    code, _, err = run_usage("--channel", "#general")

    assert code == 2
    assert err.strip() == "frugal: --channel: '#general' is not a Slack channel ID (e.g. C0123ABCD)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("7D", timedelta(days=7)),
        (" 30d ", timedelta(days=30)),
    ],
)
def test_parse_since(text, expected):
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7m", "1.5d", "d7", "0h", "5000w"])
def test_parse_since_refuses(text):
    with pytest.raises(BadSince, match="--since"):
        parse_since(text)


def test_frugal_usage_as_a_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'frugal.db'}"
    migrate = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert migrate.returncode == 0, migrate.stderr

    ok = subprocess.run(
        [sys.executable, "-m", "bot", "usage", "--since", "7d"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "usage", "--since", "soon"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ok.returncode == 0, ok.stderr
    assert "No requests in this period." in ok.stdout
    assert bad.returncode == 2
    assert bad.stderr == "frugal: --since: 'soon' is not a duration like 12h, 7d or 2w (hours, days or weeks)\n"


# --- --format csv|json: one row per day x channel x user x model -------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


def _call(
    at: datetime,
    *,
    channel: str = "C0001",
    user: str = "U1",
    model: str = "gpt-4.1-nano",
    cost: str | None = "0.000165",
    baseline: str | None = "0.004",
    outcome: str = "ok",
    team: str = "T1",
    tokens: tuple[int, int, int, int, int] = (1000, 200, 50, 300, 120),
) -> LedgerEntry:
    prompt, cached, cache_write, completion, reasoning = tokens
    return LedgerEntry(
        team_id=team,
        channel_id=channel,
        user_id=user,
        request_key=f"k-{at.isoformat()}-{channel}-{user}-{model}",
        task="rewrite",
        requested_model=model,
        served_model=model if outcome == "ok" else None,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cache_write_tokens=cache_write,
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=Decimal(baseline) if baseline is not None else None,
        energy_wh=None,
        latency_ms=3.0,
        outcome=outcome,
        error_code=None if outcome == "ok" else "timeout",
        attempt=1,
        created_at=at,
    )


def _z(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv(out: str) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(out)))


def _expected(
    day_start: datetime,
    day_end: datetime,
    *,
    channel="C0001",
    user="U1",
    model="gpt-4.1-nano",
    team="T1",
    cost="0.000165",
    baseline="0.004",
    requests=1,
    tokens=(1000, 200, 50, 300, 120),
    unpriced=0,
    failed=0,
) -> dict[str, str]:
    prompt, cached, cache_write, completion, reasoning = (n * requests for n in tokens)
    return {
        "ChargePeriodStart": _z(day_start),
        "ChargePeriodEnd": _z(day_end),
        "ChargeCategory": "Usage",
        "BillingCurrency": "USD",
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ConsumedQuantity": str(prompt + completion),
        "ConsumedUnit": "Tokens",
        "ResourceId": model,
        "SubAccountId": team,
        "x_Date": day_start.astimezone(PARIS).date().isoformat(),
        "x_ChannelId": channel,
        "x_UserId": user,
        "x_Requests": str(requests),
        "x_PromptTokens": str(prompt),
        "x_CachedTokens": str(cached),
        "x_CacheWriteTokens": str(cache_write),
        "x_CompletionTokens": str(completion),
        "x_ReasoningTokens": str(reasoning),
        "x_BaselineCost": baseline,
        "x_UnpricedRequests": str(unpriced),
        "x_FailedAttempts": str(failed),
    }


def test_csv_has_one_row_per_local_day_channel_user_and_model(run_usage):
    midnight = period_start(Period.DAY, NOW - timedelta(days=3), PARIS)  # 23:00 UTC the day before, in winter
    day_before, next_midnight = midnight - timedelta(days=1), midnight + timedelta(days=1)
    code, out, err = run_usage(
        "--since",
        "10d",
        "--format",
        "csv",
        tz="Europe/Paris",
        seed=[
            _call(midnight - timedelta(minutes=1)),  # the same UTC date as the next one, but the previous Paris day
            _call(midnight + timedelta(minutes=1)),
            _call(midnight + timedelta(hours=2), cost="0.0001", baseline="0.002"),
            _call(midnight + timedelta(hours=3), cost=None, baseline=None, outcome="error", tokens=(0, 0, 0, 0, 0)),
            _call(midnight + timedelta(hours=4), user="U2"),
            _call(midnight + timedelta(hours=5), channel="C0002", model="my-local-model", cost=None, baseline=None),
            _call(
                midnight + timedelta(hours=6),
                channel="C0002",
                model="gpt-4o-mini",
                cost=None,
                baseline=None,
                outcome="error",
                tokens=(0, 0, 0, 0, 0),
            ),
            _call(NOW - timedelta(days=11)),  # before --since
        ],
    )

    assert code == 0, err
    assert out.splitlines()[0] == (
        "ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency,BilledCost,EffectiveCost,ConsumedQuantity,"
        "ConsumedUnit,ResourceId,SubAccountId,x_Date,x_ChannelId,x_UserId,x_Requests,x_PromptTokens,x_CachedTokens,"
        "x_CacheWriteTokens,x_CompletionTokens,x_ReasoningTokens,x_BaselineCost,x_UnpricedRequests,x_FailedAttempts"
    )
    assert _csv(out) == [
        _expected(day_before, midnight),
        _expected(midnight, next_midnight, requests=2, cost="0.000265", baseline="0.006", failed=1),
        _expected(midnight, next_midnight, user="U2"),
        _expected(
            midnight, next_midnight, channel="C0002", model="gpt-4o-mini", cost="0", baseline="0", requests=0, failed=1
        ),
        # No known price: the cost is empty, never 0.
        _expected(midnight, next_midnight, channel="C0002", model="my-local-model", cost="", baseline="", unpriced=1),
    ]


def test_csv_honours_channel_and_clips_the_first_and_last_day_to_the_window(run_usage):
    code, out, _ = run_usage(
        "--since",
        "2d",
        "--format",
        "csv",
        "--channel",
        "C0002",
        seed=[
            _call(NOW - timedelta(hours=1), channel="C0002"),
            _call(NOW - timedelta(hours=1), channel="C0001"),
        ],
    )

    assert code == 0
    rows = _csv(out)
    assert [(r["x_ChannelId"], r["x_Requests"]) for r in rows] == [("C0002", "1")]
    # The last day ends now, not at midnight: the rows cover exactly the window asked for.
    today = period_start(Period.DAY, NOW, ZoneInfo("UTC"))
    assert rows[0]["ChargePeriodStart"] == _z(max(today, NOW - timedelta(days=2)))
    assert NOW - timedelta(minutes=1) < datetime.fromisoformat(rows[0]["ChargePeriodEnd"]) <= datetime.now(UTC)


def test_days_follow_daylight_saving_changes_over_years(run_usage):
    # The last Sunday of October before now: Paris goes back from +02:00 to +01:00, a 25-hour day.
    year = NOW.year if NOW > datetime(NOW.year, 11, 1, tzinfo=UTC) else NOW.year - 1
    long_day = max(datetime(year, 10, d, tzinfo=UTC) for d in range(25, 32) if datetime(year, 10, d).weekday() == 6)
    start = long_day - timedelta(hours=2)  # local midnight, +02:00
    end = long_day + timedelta(hours=23)  # the next local midnight, +01:00: 25 hours later
    three_years_ago = period_start(Period.DAY, NOW - timedelta(days=3 * 365), PARIS)
    code, out, _ = run_usage(
        "--since",
        "3660d",
        "--format",
        "csv",
        tz="Europe/Paris",
        seed=[
            _call(start - timedelta(minutes=1), user="U-before"),
            _call(start, user="U-first"),
            _call(end - timedelta(seconds=1), user="U-last"),
            _call(end, user="U-next"),
            _call(three_years_ago + timedelta(hours=12), user="U-old"),
        ],
    )

    assert code == 0
    rows = {r["x_UserId"]: (r["x_Date"], r["ChargePeriodStart"], r["ChargePeriodEnd"]) for r in _csv(out)}
    day = start.astimezone(PARIS).date()
    assert rows["U-before"][0] == (day - timedelta(days=1)).isoformat()
    assert rows["U-first"] == rows["U-last"] == (day.isoformat(), _z(start), _z(end))
    assert rows["U-next"][0] == (day + timedelta(days=1)).isoformat()
    old = three_years_ago.astimezone(PARIS).date()
    assert rows["U-old"] == (
        old.isoformat(),
        _z(three_years_ago),
        _z(period_start(Period.DAY, three_years_ago + timedelta(hours=36), PARIS)),
    )


def test_json_lines_carry_the_same_columns_with_numbers_and_null_for_unknown(run_usage):
    import json

    code, out, _ = run_usage(
        "--since",
        "1d",
        "--format",
        "json",
        seed=[
            _call(NOW - timedelta(minutes=5)),
            _call(NOW - timedelta(minutes=4), model="my-local-model", cost=None, baseline=None),
        ],
    )

    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [
        (r["ResourceId"], r["BilledCost"], r["x_BaselineCost"], r["x_Requests"], r["x_ReasoningTokens"])
        for r in records
    ] == [("gpt-4.1-nano", "0.000165", "0.004", 1, 120), ("my-local-model", None, None, 1, 120)]
    assert list(records[0]) == out_columns()


def out_columns() -> list[str]:
    from bot.services.usage_export import COLUMNS

    return list(COLUMNS)


def test_an_empty_export_is_the_header_alone(run_usage):
    code, out, _ = run_usage("--since", "12h", "--format", "csv")

    assert code == 0
    assert out.splitlines() == [",".join(out_columns())]


def test_bad_format_is_refused(run_usage):
    with pytest.raises(SystemExit) as exit_:
        run_usage("--format", "xml")
    assert exit_.value.code == 2


def test_the_table_is_readable_at_80_columns():
    from bot.commands.usage import render
    from bot.services.usage import ModelLine, UsageTable

    nano = ModelLine("gpt-4.1-nano", 1_234, 1_234_567, 400, 200, Decimal("0.00033"), failed=1)
    local = ModelLine("my-local-model", 1, 10, 0, 5, unpriced=1)
    table = UsageTable(
        NOW - timedelta(days=1),
        NOW,
        (("T1", "C0123ABCDEF", nano), ("T1", "C0002", local)),
        ModelLine("all models").plus(nano).plus(local),
    )

    wide, narrow = render(table, ZoneInfo("UTC")), render(table, ZoneInfo("UTC"), width=80)

    assert max(len(line) for line in wide.splitlines()) > 80
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "…" not in narrow
    lines = narrow.splitlines()
    header = next(line for line in lines if line.startswith("Channel"))
    body = lines[lines.index(header) + 2 : lines.index("", lines.index(header))]

    def column(left: int, right: int) -> str:  # a column's text, its wrapped pieces joined
        return "".join("".join(line[left:right].split()) for line in body)

    for cell in ("C0123ABCDEF", "1,234,567", "$0.00033", "1,234", "Total", "1,235"):
        assert cell in narrow  # IDs and counts never wrap
    models = column(header.index("Model"), header.index("Requests"))
    assert "gpt-4.1-nano" in models and "my-local-model" in models
    costs = column(header.index("Tokens out") + len("Tokens out"), header.index("Cost") + len("Cost"))
    assert "priceunknown" in costs and "$0.00033+1unpriced" in costs
