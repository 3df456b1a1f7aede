"""The load benchmark's figures, and one tiny run of it end to end (both servers, the real fakes)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from bench.load import main, percentile, summarize
from bench.load_driver import LoadResult, ReplyInbox, Sample
from bench.load_fakes import ReplyArrival


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_summary_counts_only_good_replies_inside_the_window():
    samples = [
        Sample(sent=10.0, acked=10.01, replied=11.0, error=None),
        Sample(sent=10.5, acked=10.53, replied=11.5, error=None),
        Sample(sent=11.0, acked=11.02, replied=None, error="no reply in time"),
        Sample(sent=19.5, acked=19.51, replied=20.5, error=None),  # its reply lands after the window
        Sample(sent=9.0, acked=9.01, replied=10.2, error="reply is not the rewrite"),
    ]
    result = LoadResult(
        samples,
        window=(10.0, 20.0),
        cpu_seconds=0.02,
        peak_rss_mb=80.0,
        duplicate_replies=1,
        late_replies=0,
        errors={"no reply in time": 1, "reply is not the rewrite": 1},
    )

    figures = summarize(result)

    assert figures["replies_per_s"] == pytest.approx(0.2)
    assert figures["cpu_ms"] == pytest.approx(10.0)
    assert figures["ack_p99"] == pytest.approx(30.0)
    assert figures["e2e_p50"] == pytest.approx(1000.0)
    assert (figures["errors"], figures["sent"]) == (3, 5)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads CPU and memory from /proc")
def test_a_short_run_answers_every_command_of_both_servers(tmp_path, capsys):
    output = tmp_path / "load.md"

    code = main(
        ["--concurrency", "3", "--model-latency", "0.05", "--duration", "2", "--warmup", "0.5", "--output", str(output)]
    )

    report = output.read_text()
    assert code == 0
    assert report in capsys.readouterr().out
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in report.splitlines() if line.startswith("| ")
    }
    frugal_rate, baseline_rate = (float(cell.replace(",", "")) for cell in rows["completed replies/s"][:2])
    assert frugal_rate > 0 and baseline_rate > 0
    assert rows["errors / commands sent"][0].startswith("0 / ")
    assert rows["errors / commands sent"][1].startswith("0 / ")
    assert (tmp_path / "load-frugal.log").exists() and (tmp_path / "load-baseline.log").exists()


async def test_the_inbox_matches_replies_and_counts_duplicates_and_late_ones():
    receiving, sending = multiprocessing.Pipe(duplex=False)
    inbox = ReplyInbox(receiving)
    waiting = inbox.expect("frugal-1")
    inbox.expect("frugal-2")
    inbox.forget("frugal-2")  # its request gave up
    for name in ("frugal-1", "frugal-1", "frugal-2"):
        sending.send(ReplyArrival(name, 1.0, "text"))

    inbox.drain_pipe()

    assert waiting.result().name == "frugal-1"
    assert (inbox.duplicates, inbox.late) == (1, 1)
    assert inbox.strays("frugal") == (1, 1)
    assert inbox.strays("baseline") == (0, 0), "a run counts only the replies to its own commands"


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads CPU and memory from /proc")
def test_an_open_loop_sends_on_schedule_and_reports_what_was_in_flight(tmp_path):
    output = tmp_path / "load.md"

    code = main(
        [
            "--rate",
            "40",
            "--servers",
            "frugal",
            "--model-latency",
            "0.2",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--output",
            str(output),
        ]
    )

    report = output.read_text()
    assert code == 0
    assert "open loop, 40 commands/s" in report
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in report.splitlines() if line.startswith("| ")
    }
    # 40 a second, each taking a little over 0.2 s: about 8 in flight, whatever the server's speed.
    assert 4 <= float(rows["commands in flight (mean over the window)"][0]) <= 20
    assert 30 <= float(rows["completed replies/s"][0]) <= 50
    assert rows["errors / commands sent"][0].startswith("0 / ")
    assert "--rate 40" in report
