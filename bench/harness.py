"""Benchmark helpers shared beyond bench/load*.py: a fake OpenAI in its own process that says what it was asked."""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.load_fakes import START_TIMEOUT_S
from tests.fakes.openai_server import FakeOpenAI

ASK_TIMEOUT_S = 10.0


@dataclass
class CountingOpenAI:
    """The fake OpenAI's process: its URL, and a way to read the chat requests it has received."""

    url: str
    _process: multiprocessing.process.BaseProcess
    _control: Connection

    def prompts(self) -> list[str]:
        """The last user message of every chat completion request received so far, in arrival order."""
        self._control.send("prompts")
        if not self._control.poll(ASK_TIMEOUT_S):
            raise RuntimeError("the fake OpenAI did not answer")
        return self._control.recv()

    def stop(self) -> None:
        """Stop the fake and make sure its process is gone."""
        try:
            self._control.send("stop")
        except OSError:
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)


def start_counting_openai(model_latency: float) -> CountingOpenAI:
    """Start the fake OpenAI (every reply delayed by ``model_latency`` s) in a process of its own."""
    context = multiprocessing.get_context("spawn")
    control, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, model_latency), daemon=True)
    process.start()
    fake = CountingOpenAI("", process, control)
    try:
        if not control.poll(START_TIMEOUT_S):
            raise RuntimeError("the fake OpenAI did not start in time")
        fake.url = control.recv()
    except BaseException:
        fake.stop()
        raise
    return fake


def _serve(control: Connection, model_latency: float) -> None:
    # Ctrl-C reaches the whole process group; the parent then stops the fake itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fake = FakeOpenAI()
    fake.latency = model_latency
    with fake:
        control.send(fake.api_url)
        # The parent may die without saying "stop": a closed pipe (EOFError) ends the fake too.
        try:
            while (order := control.recv()) != "stop":
                if order == "prompts":
                    control.send([_last_user_text(r.json) for r in fake.requests])
        except (EOFError, OSError):
            pass


def _last_user_text(body: dict) -> str:
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""
