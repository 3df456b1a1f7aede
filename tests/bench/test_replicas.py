"""The two-replica benchmark's verdict, and one tiny run of it end to end (two `frugal run`, PostgreSQL, the real fakes)."""

from __future__ import annotations

import os
from argparse import Namespace
from collections import Counter

import pytest

from bench.replicas import NO_ACK, Outcome, Run, exact, main, summarize

ARGS = Namespace(deliveries=4, quota=2, duplicate_every=2, retry_every=4)


def _run(**changes) -> Run:
    outcomes = [
        Outcome(sent=10.0, acks_ms=(20.0, 30.0), replied=11.0, kind="answered"),
        Outcome(sent=10.0, acks_ms=(10.0,), replied=11.5, kind="answered"),
        Outcome(sent=10.5, acks_ms=(40.0, 50.0), replied=10.6, kind="refused"),
        Outcome(sent=10.5, acks_ms=(60.0,), replied=10.7, kind="refused"),
    ]
    run = Run(outcomes=outcomes, prompts=["a", "b"], ok_ledger_rows=2, counter_used=2, posts=6)
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def test_a_run_is_exact_only_when_every_count_matches_the_quota():
    assert exact(ARGS, _run())
    assert not exact(ARGS, _run(prompts=["a", "b", "a"]))  # a duplicate reached the model
    assert not exact(ARGS, _run(second_replies=1))
    assert not exact(ARGS, _run(counter_used=3))
    assert not exact(ARGS, _run(counter_held=1))
    assert not exact(ARGS, _run(failed_posts=Counter({NO_ACK: 1})))


def test_figures_count_answers_until_the_last_answer_and_missing_acks_as_three_seconds():
    figures = summarize(ARGS, _run(failed_posts=Counter({NO_ACK: 1})))

    assert figures["answered_per_s"] == pytest.approx(2 / 1.5)
    assert figures["replies_per_s"] == pytest.approx(4 / 1.5)
    assert figures["ack_p99"] == 3000.0 and figures["ack_p50"] == 40.0
    answered_acks = sorted(a for o in _run().outcomes if o.kind == "answered" for a in o.acks_ms)
    assert figures["answered_ack_p99"] == answered_acks[-1], "the answered deliveries' acks, without the refusals"
    assert (figures["answered"], figures["refused"], figures["errors"]) == (2, 2, 1)
    assert (figures["duplicated"], figures["retried"]) == (2, 1)


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="two replicas need PostgreSQL (TEST_DATABASE_URL)")
def test_a_short_run_is_exact(tmp_path, capsys):
    output = tmp_path / "replicas.md"

    code = main(
        [
            "--concurrency",
            "8",
            "--model-latency",
            "0.1",
            "--deliveries",
            "40",
            "--quota",
            "15",
            "--timeout",
            "120",
            "--output",
            str(output),
        ]
    )

    report = output.read_text()
    assert report in capsys.readouterr().out
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in report.splitlines() if line.startswith("| ")
    }
    assert rows["model calls at the fake OpenAI"][0] == "15"
    assert rows["answered / refused with the quota message"][0] == "15 / 25"
    assert rows["prompts the model saw twice"][0] == "0" and rows["second replies to a delivery"][0] == "0"
    assert code == 0, report
    assert (tmp_path / "replica-a" / "load-frugal.log").exists() and (
        tmp_path / "replica-b" / "load-frugal.log"
    ).exists()
