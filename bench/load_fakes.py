"""The test fakes (OpenAI, Slack) run in child processes, so their CPU is not counted against the bot under test."""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import Call, FakeSlack

REPLY_PREFIX = "response_url:"
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ReplyArrival:
    """One POST to a response URL, as the fake Slack saw it: URL name, arrival time (time.time()), text."""

    name: str
    at: float
    text: str


class ReportingSlack(FakeSlack):
    """FakeSlack that also sends every response_url POST down a pipe the moment it arrives."""

    def __init__(self, events: Connection) -> None:
        self._events = events
        super().__init__()

    def _record(self, call: Call) -> None:
        super()._record(call)
        if call.method.startswith(REPLY_PREFIX):
            name = call.method.removeprefix(REPLY_PREFIX)
            self._events.send(ReplyArrival(name, call.at, str(call.params.get("text", ""))))


@dataclass
class FakeProcesses:
    """The running fakes: their URLs, the pipe of reply arrivals, and the processes to stop."""

    openai_url: str
    slack_api_url: str
    slack_base_url: str
    replies: Connection
    _processes: list[tuple[multiprocessing.process.BaseProcess, Connection]]

    def response_url(self, name: str) -> str:
        """A response URL whose POSTs come back on ``replies`` under ``name``."""
        return f"{self.slack_base_url}/response/{name}"

    def stop(self) -> None:
        """Tell each fake to stop, then make sure its process is gone."""
        for process, control in self._processes:
            try:
                control.send("stop")
            except OSError:
                pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


def start_fakes(model_latency: float) -> FakeProcesses:
    """Start the fake OpenAI (every reply delayed by ``model_latency`` s) and the fake Slack, one process each."""
    context = multiprocessing.get_context("spawn")
    processes: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        openai_ctl, openai_child = context.Pipe()
        openai_proc = context.Process(target=_serve_openai, args=(openai_child, model_latency), daemon=True)
        openai_proc.start()
        processes.append((openai_proc, openai_ctl))
        replies_in, replies_out = context.Pipe(duplex=False)
        slack_ctl, slack_child = context.Pipe()
        slack_proc = context.Process(target=_serve_slack, args=(slack_child, replies_out), daemon=True)
        slack_proc.start()
        processes.append((slack_proc, slack_ctl))
        openai_url = _receive(openai_ctl)
        slack_api_url, slack_base_url = _receive(slack_ctl)
    except BaseException:
        FakeProcesses("", "", "", None, processes).stop()  # type: ignore[arg-type]
        raise
    return FakeProcesses(openai_url, slack_api_url, slack_base_url, replies_in, processes)


def _receive(control: Connection) -> Any:
    if not control.poll(START_TIMEOUT_S):
        raise RuntimeError("a fake server did not start in time")
    return control.recv()


def _serve_openai(control: Connection, model_latency: float) -> None:
    _ignore_ctrl_c()
    fake = FakeOpenAI()
    fake.latency = model_latency
    with fake:
        control.send(fake.api_url)
        _wait_for_stop(control)


def _serve_slack(control: Connection, events: Connection) -> None:
    _ignore_ctrl_c()
    with ReportingSlack(events) as fake:
        control.send((fake.api_url, fake.base_url))
        _wait_for_stop(control)


def _ignore_ctrl_c() -> None:
    # Ctrl-C reaches the whole process group; the parent then stops the fakes itself, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for_stop(control: Connection) -> None:
    # The parent may die without saying "stop": a closed pipe (EOFError) ends the fake too.
    try:
        while control.recv() != "stop":
            pass
    except (EOFError, OSError):
        pass
