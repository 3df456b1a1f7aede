"""The load benchmark's baseline: /rewrite written the way most Slack GPT bots are.

A synchronous Bolt `App`, a lazy listener on Bolt's default thread pool, the sync `openai.OpenAI`
client, the answer sent with `respond()`, served by `app.start(port)` (Bolt's built-in HTTP server).
It reads the same variables as Frugal (SLACK_API_URL, OPENAI_BASE_URL, SLACK_SIGNING_SECRET,
SLACK_BOT_TOKEN, OPENAI_API_KEY). Run by bench/load.py: `python bench/baseline_sync_app.py --port N`.
"""

from __future__ import annotations

import argparse
import logging
import os

from openai import OpenAI
from slack_bolt import App
from slack_sdk import WebClient

MODEL = "gpt-4.1-nano"
SYSTEM = "You edit Slack messages. Rewrite the message so it is clear and easy to read. Reply with the rewrite only."


def build_app() -> App:
    """The Bolt app: ack at once, call the model in a lazy listener, answer through response_url."""
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])
    openai_client = OpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=os.environ["OPENAI_BASE_URL"])

    def ack_rewrite(ack, command):
        ack()

    def answer_rewrite(command, respond):
        completion = openai_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": command["text"]}],
        )
        respond(text=completion.choices[0].message.content or "", response_type="ephemeral")

    app.command("/rewrite")(ack=ack_rewrite, lazy=[answer_rewrite])
    return app


def main() -> None:
    """Serve on --port until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    logging.basicConfig(level=logging.WARNING)
    build_app().start(port=port, http_server_logger_enabled=False)


if __name__ == "__main__":
    main()
