"""By hand, not in CI: run compose.yaml + compose.host.yaml against the tests' fake Slack and OpenAI, and show
that both replicas answer signed requests and share one database. docs/deploy.md has a run's output.

    python .ci/compose_smoke.py [--keep]      # needs docker-compose, and the frugal-base image (docs/deploy.md)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402 (after the checkout is on sys.path)
from tests.fakes.slack_server import FakeSlack  # noqa: E402 (after the checkout is on sys.path)
from tests.fakes.slack_signing import sign_request, slash_command  # noqa: E402 (after the checkout is on sys.path)

COMPOSE = ["docker-compose", "-p", "frugal-smoke", "-f", "compose.yaml", "-f", "compose.host.yaml"]
REPLICAS = {"frugal-1": 3101, "frugal-2": 3102}
BOT_TOKEN, SIGNING_SECRET, ADMIN = "xoxb-smoke", "smoke-signing-secret", "U0001"


def main() -> int:
    """Bring the stack up, talk to each replica as Slack does, print what happened, bring it down."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    with FakeSlack() as slack, FakeOpenAI() as openai:
        slack.strict_tokens = True
        slack.tokens = {BOT_TOKEN: {}}
        slack.users[ADMIN] = {"is_admin": True}
        env = os.environ | {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "OPENAI_API_KEY": "sk-smoke",
            "OPENAI_BASE_URL": openai.api_url,
            "FRUGAL_MODELS": "gpt-4.1-nano",
            "FRUGAL_ADMINS": ADMIN,
        }
        try:
            _run([*COMPOSE, "up", "-d", "--build"], env)
            for name, port in REPLICAS.items():
                _wait_healthy(name, port)
            _show("docker-compose ps", _run([*COMPOSE, "ps"], env))
            for name in REPLICAS:
                user = _run(["docker", "exec", f"frugal-smoke_{name}_1", "id"], env)
                _show(f"{name}: id", user)

            print("\n$ signed /frugal quota set here 3 requests/day  → frugal-1 (127.0.0.1:3101)")
            print(_command(slack, 3101, "/frugal", "quota set here 3 requests/day", "set"))
            print("\n$ signed /frugal quota show here  → frugal-2 (127.0.0.1:3102)")
            print(_command(slack, 3102, "/frugal", "quota show here", "show"))
            print("\n$ signed /rewrite formal: can u send the report  → frugal-2, then → frugal-1")
            print(_command(slack, 3102, "/rewrite", "formal: can u send the report", "rewrite-2"))
            print(_command(slack, 3101, "/rewrite", "formal: can u send the report today", "rewrite-1"))
            print("\n$ signed /usage  → frugal-1")
            print(_command(slack, 3101, "/usage", "", "usage"))
            sql = "SELECT count(*) AS ledger_rows, count(DISTINCT request_key) AS requests FROM usage_ledger"
            _show(
                f"psql (the one database): {sql}",
                _run(["psql", "-h", "127.0.0.1", "-p", "55432", "-U", "frugal", "-d", "postgres", "-c", sql], env),
            )
            _show(
                "docker-compose logs frugal-1 frugal-2 (last lines)",
                _run([*COMPOSE, "logs", "--tail", "6", "frugal-1", "frugal-2"], env),
            )
        finally:
            if not args.keep:
                _run([*COMPOSE, "down", "-v"], env)
    return 0


def _command(slack: FakeSlack, port: int, command: str, text: str, name: str) -> str:
    body, content_type = slash_command(command, text, user_id=ADMIN, response_url=slack.response_url(name))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body.encode(),
        headers={"Content-Type": content_type, **sign_request(SIGNING_SECRET, body)},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        status, acked = response.status, response.read()
    if acked:  # answered in the acknowledgement itself
        return f"HTTP {status}; acknowledged with: {json.loads(acked).get('text')!r}"
    [reply] = slack.wait_for(f"response_url:{name}", timeout=30)
    return f"HTTP {status}; then on the response URL: {reply.params.get('text')!r}"


def _wait_healthy(name: str, port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Health.Status}}", f"frugal-smoke_{name}_1"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if state == "healthy":
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                print(
                    f"{name}: docker health {state}; GET 127.0.0.1:{port}/healthz → {response.status} {json.loads(response.read())}"
                )
            return
        time.sleep(1)
    raise SystemExit(f"{name} did not become healthy in 120 s")


def _run(argv: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def _show(title: str, output: str) -> None:
    print(f"\n$ {title}\n{output.rstrip()}")


if __name__ == "__main__":
    sys.exit(main())
