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
    result = _frugal("run", env=_env(tmp_path, FRUGAL_TIMEZONE="Nowhere/Land"), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip() == "frugal: FRUGAL_TIMEZONE: unknown time zone 'Nowhere/Land' (e.g. UTC, Europe/Paris)"


def test_run_without_secrets_names_the_missing_variable(tmp_path):
    result = _frugal("run", env=_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().startswith("frugal: SLACK_SIGNING_SECRET:")
    assert "Traceback" not in result.stderr


def test_migrate_brings_a_new_database_up_to_date(tmp_path):
    result = _frugal("migrate", env=_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "frugal.db").exists()


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
        [sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_healthy(port, process)
        body, content_type = slash_command("/rewrite", "concise: we should maybe meet", response_url=fake_slack.response_url("cli"))
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
