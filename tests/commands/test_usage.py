"""`frugal usage`: the per-channel, per-model table from a seeded ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.commands.usage import BadSince, parse_since
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.ports.ledger import LedgerEntry
from bot.services.quota_spec import period_start
from bot.ports.quota import Period

NOW = datetime.now(timezone.utc)


def _entry(channel: str, model: str, *, ago: timedelta, cost: str | None, tokens: tuple[int, int, int] = (1000, 200, 100),
           outcome: str = "ok", team: str = "T1", baseline: str | None = None, at: datetime | None = None) -> LedgerEntry:
    return LedgerEntry(
        team_id=team, channel_id=channel, user_id="U1", request_key=f"k-{channel}-{ago}", task="rewrite",
        requested_model=model, served_model=model if outcome == "ok" else None,
        prompt_tokens=tokens[0], cached_tokens=tokens[1], completion_tokens=tokens[2],
        cost_usd=Decimal(cost) if cost is not None else None,
        baseline_cost_usd=Decimal(baseline) if baseline is not None else None, energy_wh=None, latency_ms=3.0,
        outcome=outcome, error_code=None if outcome == "ok" else "timeout", attempt=1, created_at=at or NOW - ago,
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
    code, out, err = run_usage("--since", "2d", seed=[
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="0.000165", baseline="0.004"),
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=2), cost="0.000165", baseline="0.004"),
        _entry("C0001", "gpt-4o-mini", ago=timedelta(hours=3), cost="0.012"),
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=4), cost=None, tokens=(0, 0, 0), outcome="error"),
        _entry("C0002", "my-local-model", ago=timedelta(hours=5), cost=None, tokens=(10, 0, 5)),
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(days=3), cost="9"),  # before --since
    ])

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Usage of every channel from ") and lines[0].endswith("(UTC)")
    table = [line.split("  ") for line in lines[2:]]
    cells = [[c.strip() for c in row if c.strip()] for row in table if row and not row[0].startswith("-")]
    assert cells[0] == ["Channel", "Model", "Requests", "Tokens in", "Cached", "Tokens out", "Cost", "Failed"]
    assert cells[1] == ["C0001", "gpt-4o-mini", "1", "1,000", "200", "100", "$0.012", "0"]
    assert cells[2] == ["C0001", "gpt-4.1-nano", "2", "2,000", "400", "200", "$0.00033", "1"]
    assert cells[3] == ["C0002", "my-local-model", "1", "10", "0", "5", "price unknown", "0"]
    assert cells[4] == ["Total", "4", "3,010", "600", "305", "$0.0123 + 1 unpriced", "1"]
    assert "1 answered requests used a model with no known price" in out
    assert "Saved $0.00767 against the baseline model" in out


def test_columns_line_up(run_usage):
    _, out, _ = run_usage("--since", "1w", seed=[
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="1234.5", tokens=(1_234_567, 0, 1)),
        _entry("C0002222", "gpt-4o-mini", ago=timedelta(hours=1), cost="0.01"),
    ])

    rows = [line for line in out.splitlines()[2:] if line and not line.startswith("Saved")]
    # Right-aligned numbers: every row's Cost column ends at the same place as the header's.
    header = rows[0]
    cost_end = header.index("Cost") + len("Cost")
    for row in rows[2:]:
        if not row.startswith("-"):
            assert row[:cost_end].rstrip() == row[:cost_end], row
            assert row[cost_end:cost_end + 2] == "  ", row


def test_channel_filter_and_default_period_is_this_month(run_usage):
    month_start = period_start(Period.MONTH, NOW, ZoneInfo("UTC"))
    code, out, _ = run_usage("--channel", "C0002", seed=[
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(seconds=30), cost="0.5"),
        _entry("C0002", "gpt-4.1-nano", ago=timedelta(seconds=30), cost="0.25"),
        _entry("C0002", "gpt-4.1-nano", ago=timedelta(0), at=month_start - timedelta(minutes=1), cost="7"),
    ])

    assert code == 0
    assert f"Usage of channel C0002 from {month_start:%Y-%m-%d %H:%M} to " in out
    assert "C0001" not in out
    assert " $0.25 " in out and "$7" not in out


def test_several_workspaces_get_a_team_column(run_usage):
    _, out, _ = run_usage("--since", "1d", seed=[
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="0.01", team="T1"),
        _entry("C0001", "gpt-4.1-nano", ago=timedelta(hours=1), cost="0.02", team="T2"),
    ])

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


@pytest.mark.parametrize(("text", "expected"), [
    ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)), ("7D", timedelta(days=7)),
    (" 30d ", timedelta(days=30)),
])
def test_parse_since(text, expected):
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7m", "1.5d", "d7", "0h", "5000w"])
def test_parse_since_refuses(text):
    with pytest.raises(BadSince, match="--since"):
        parse_since(text)


def test_frugal_usage_as_a_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'frugal.db'}"
    migrate = subprocess.run([sys.executable, "-m", "bot", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, migrate.stderr

    ok = subprocess.run([sys.executable, "-m", "bot", "usage", "--since", "7d"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    bad = subprocess.run([sys.executable, "-m", "bot", "usage", "--since", "soon"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert ok.returncode == 0, ok.stderr
    assert "No requests in this period." in ok.stdout
    assert bad.returncode == 2
    assert bad.stderr == "frugal: --since: 'soon' is not a duration like 12h, 7d or 2w (hours, days or weeks)\n"
