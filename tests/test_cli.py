"""The `frugal` command as a user runs it: a real process, real ports, the fakes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.slack_signing import sign_request, slash_command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'frugal.db'}", **extra)
    return env


def _frugal(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_bad_setting_stops_with_one_line_naming_the_variable(tmp_path):
    env = _env(
        tmp_path,
        FRUGAL_TIMEZONE="Nowhere/Land",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="s",
        OPENAI_API_KEY="k",
    )
    result = _frugal("run", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip() == "frugal: FRUGAL_TIMEZONE: unknown time zone 'Nowhere/Land' (e.g. UTC, Europe/Paris)"


def test_run_with_nothing_set_names_every_missing_variable_at_once(tmp_path):
    result = _frugal("run", env=_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
    ]
    assert all(line.startswith("frugal: ") for line in lines)
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_names_wrong_and_missing_settings_together(tmp_path):
    env = _env(tmp_path, PORT="eighty", FRUGAL_TIMEZONE="Nowhere/Land", SLACK_BOT_TOKEN="xoxp-user")
    result = _frugal("run", env=env, cwd=tmp_path)

    assert result.returncode == 2
    variables = [line.split(":")[1].strip() for line in result.stderr.strip().splitlines()]
    assert variables == ["SLACK_BOT_TOKEN", "FRUGAL_TIMEZONE", "PORT", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY"]


def test_run_with_a_rejected_bot_token_stops_with_one_line(tmp_path, fake_openai, fake_slack):
    fake_slack.responses["auth.test"] = {"ok": False, "error": "invalid_auth"}
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.api_url,
        PORT=str(_free_port()),
    )
    result = _frugal("run", env=env, cwd=tmp_path)

    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "frugal: SLACK_BOT_TOKEN: Slack rejected the bot token (auth.test: invalid_auth); set SLACK_BOT_TOKEN"
    )
    [auth] = fake_slack.calls_to("auth.test")
    assert auth.token == BOT_TOKEN
    # Stopped before the migrations: no database, no model call.
    assert not (tmp_path / "frugal.db").exists()
    assert fake_openai.requests == []


def test_migrate_says_what_it_applied_then_that_nothing_was_left(tmp_path):
    result = _frugal("migrate", env=_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "frugal.db").exists()
    lines = result.stdout.splitlines()
    assert lines[0] == "applied 0001: The usage ledger: one row per model call attempt."
    applied = [line for line in lines if line.startswith("applied ")]
    assert len(applied) >= 7
    assert lines[-1] == f"database is up to date ({len(applied)} migration(s) applied)"

    again = _frugal("migrate", env=_env(tmp_path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["database was already up to date: nothing to apply"]


@pytest.mark.parametrize("command", [["migrate"], ["usage"], ["digest"]])
def test_a_database_that_refuses_connections_is_one_line_naming_the_error(tmp_path, command):
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/frugal"  # nothing listens there
    result = _frugal(*command, env={**_env(tmp_path), "DATABASE_URL": url}, cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip() == "frugal: DATABASE_URL: cannot use the database (ConnectionRefusedError)"


def test_dotenv_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("FRUGAL_MODELS=gpt-4.1-nano,gpt-4.1-nano\n")
    result = _frugal("migrate", env=_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("frugal: FRUGAL_MODELS:")


def test_frugal_run_serves_rewrite_end_to_end(tmp_path, fake_openai, fake_slack):
    port = _free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.api_url,
        PORT=str(port),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_healthy(port, process)
        body, content_type = slash_command(
            "/rewrite", "concise: we should maybe meet", response_url=fake_slack.response_url("cli")
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/slack/events",
            data=body.encode(),
            headers={"Content-Type": content_type, **sign_request(SIGNING_SECRET, body)},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        [answer] = fake_slack.wait_for("response_url:cli", timeout=15)
        assert answer.params["text"] == "[gpt-4.1-nano] we should maybe meet"
        assert [r.json["model"] for r in fake_openai.requests] == ["gpt-4.1-nano"]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    # Message text never reaches the logs.
    assert "meet" not in output
    # Bolt's notice that the client Frugal gives it wins over SLACK_BOT_TOKEN is noise, not a warning.
    assert "will be unused" not in output


def test_run_starts_without_bolts_token_warning(tmp_path, fake_openai, fake_slack):
    port = _free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.api_url,
        PORT=str(port),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_healthy(port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "Frugal listening" in output
    # SLACK_BOT_TOKEN is in the environment, where Bolt reads it too; the client Frugal gives it carries it.
    assert "will be unused" not in output


def _wait_healthy(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"frugal run exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("frugal run did not become healthy within 30 s")
