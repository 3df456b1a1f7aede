"""CI: serve the tests' fake Slack and fake OpenAI on 127.0.0.1 until SIGTERM, for `frugal check` run from the wheel.

Writes SLACK_API_URL and OPENAI_BASE_URL to --env-file once both listen; on SIGTERM prints how often Slack
was asked auth.test with the token, and exits 1 if never.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack


def main() -> int:
    """Serve both fakes until told to stop; report their calls."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-file", required=True, type=Path)
    parser.add_argument("--bot-token", required=True, help="the only bot token the fake Slack accepts")
    parser.add_argument("--models", required=True, help="comma-separated models the fake OpenAI lists")
    args = parser.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    slack, openai = FakeSlack(), FakeOpenAI()
    slack.strict_tokens = True
    slack.tokens = {args.bot_token: {}}
    slack.start()
    openai.start()
    try:
        openai.models = dict.fromkeys(m.strip() for m in args.models.split(",") if m.strip())
        args.env_file.write_text(f"SLACK_API_URL={slack.api_url}\nOPENAI_BASE_URL={openai.api_url}\n")
        stop.wait()
        auth = slack.calls_to("auth.test", lambda call: call.token == args.bot_token)
        print(f"fake Slack: {len(auth)} auth.test call(s) with the bot token")
        return 0 if auth else 1
    finally:
        slack.stop()
        openai.stop()


if __name__ == "__main__":
    sys.exit(main())
