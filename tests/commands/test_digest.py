"""`frugal digest [--now] [--channel C]` as an operator runs it: a real process, the fake Slack, a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from bot.infra.db.digest_store import SqlDigestStore
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.ports.digest_store import Frequency
from tests.conftest import BOT_TOKEN
from tests.infra.db.digest_seed import row, seed


async def _prepare(url: str) -> None:
    """Subscribe C1 (daily) and C2 (weekly) in T0001; give C1 one answered request today."""
    engine = make_engine(url)
    try:
        store = SqlDigestStore(make_sessionmaker(engine))
        now = datetime.now(timezone.utc)
        await store.subscribe("T0001", "C1", Frequency.DAILY, time(9), "UADMIN", now)
        await store.subscribe("T0001", "C2", Frequency.WEEKLY, time(17, 30), "UADMIN", now)
        midnight = datetime.combine(now.date(), time(0), tzinfo=timezone.utc)
        await seed(
            engine,
            [
                row(
                    midnight + (now - midnight) / 2,
                    team="T0001",
                    channel="C1",
                    tokens=(10, 0, 5),
                    cost="0.0125",
                    baseline="0.5",
                )
            ],
        )
    finally:
        await engine.dispose()


def _frugal(tmp_path: Path, url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env.update(DATABASE_URL=url, **extra)
    return _run(tmp_path, env, *args)


def _posting(fake_slack, fake_openai) -> dict[str, str]:
    """Variables for posting: the fake Slack, and the fake OpenAI for the model lifecycle warnings."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake_slack.api_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_openai.api_url,
        "FRUGAL_MODELS": "gpt-4.1-nano,gpt-4o-mini",  # the fake's gateway-style listing
    }


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "digest", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _channels(fake_slack) -> list[str]:
    return sorted(c.params["channel"] for c in fake_slack.calls_to("chat.postMessage"))


async def test_now_posts_every_subscribed_channel(tmp_path, migrated_url, fake_slack, fake_openai):
    await _prepare(migrated_url)
    fake_openai.models["gpt-4o-mini"] = (datetime.now(timezone.utc) + timedelta(days=10)).date().isoformat()

    result = _frugal(tmp_path, migrated_url, "--now", **_posting(fake_slack, fake_openai))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "C1: posted ($0.0125 over 1 request so far)",
        "C2: posted ($0.00 over 0 requests so far)",
    ]
    assert _channels(fake_slack) == ["C1", "C2"]
    assert len(fake_slack.calls_to("files.completeUploadExternal")) == 1  # C2 had no cost: no chart
    assert {c.token for c in fake_slack.calls_to("chat.postMessage")} == {BOT_TOKEN}
    # The lifecycle warning comes from GET /v1/models at the time of posting; C2's quiet week is one line.
    c1, c2 = sorted(fake_slack.calls_to("chat.postMessage"), key=lambda c: c.params["channel"])
    assert ":warning: gpt-4o-mini shuts down on" in str(c1.params["blocks"])
    assert c2.params["text"].startswith("No Frugal usage in <#C2>")


async def test_now_with_a_channel_posts_only_that_one(tmp_path, migrated_url, fake_slack, fake_openai):
    await _prepare(migrated_url)

    result = _frugal(tmp_path, migrated_url, "--now", "--channel", "C2", **_posting(fake_slack, fake_openai))

    assert result.returncode == 0, result.stderr
    assert _channels(fake_slack) == ["C2"]
    [post] = fake_slack.calls_to("chat.postMessage")
    assert post.params["text"].startswith("No Frugal usage in <#C2> so far this week")


async def test_an_unsubscribed_or_malformed_channel_is_an_error(tmp_path, migrated_url, fake_slack, fake_openai):
    await _prepare(migrated_url)
    env = _posting(fake_slack, fake_openai)

    unknown = _frugal(tmp_path, migrated_url, "--now", "--channel", "C9", **env)
    malformed = _frugal(tmp_path, migrated_url, "--now", "--channel", "#general", **env)

    assert unknown.returncode == 1
    assert unknown.stderr.splitlines()[-1].startswith("frugal: channel C9 has no digest subscription")
    assert malformed.returncode == 2
    assert "not a Slack channel ID: '#general'" in malformed.stderr
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_refused_post_is_reported_and_the_exit_code_says_so(tmp_path, migrated_url, fake_slack, fake_openai):
    await _prepare(migrated_url)
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": "channel_not_found"})

    result = _frugal(tmp_path, migrated_url, "--now", **_posting(fake_slack, fake_openai))

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "C1: not posted: Frugal cannot see this channel: invite it with `/invite @Frugal` (private channels need it)."
    )
    assert result.stdout.splitlines() == ["C2: posted ($0.00 over 0 requests so far)"]
    assert "Traceback" not in result.stderr


async def test_without_now_it_lists_the_subscriptions_and_posts_nothing(tmp_path, migrated_url, fake_slack):
    await _prepare(migrated_url)

    result = _frugal(tmp_path, migrated_url, FRUGAL_TIMEZONE="Europe/Paris")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "C1 (team T0001): a daily cost digest every day at 09:00 (Europe/Paris), covering the previous day",
        "C2 (team T0001): a weekly cost digest every Monday at 17:30 (Europe/Paris), covering the previous Monday–Sunday",
    ]
    assert fake_slack.calls == []


def test_now_without_a_token_names_the_variable(tmp_path):
    result = _frugal(tmp_path, f"sqlite:///{tmp_path / 'frugal.db'}", "--now")

    assert result.returncode == 2
    assert result.stderr.strip().startswith("frugal: SLACK_BOT_TOKEN: required to post digests")


def test_without_subscriptions_it_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'frugal.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env["DATABASE_URL"] = url
    migrated = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr

    result = _frugal(tmp_path, url)

    assert (result.returncode, result.stdout) == (0, "no channel is subscribed to cost digests\n")
