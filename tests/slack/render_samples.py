"""A sample digest and App Home, built by the real Block Kit builders and shown as text: docs/samples.md.

    python -m tests.slack.render_samples docs/samples.md

tests/slack/test_samples.py fails when docs/samples.md no longer matches what the builders make.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.ports.model_status import ModelHealth
from bot.ports.quota import Metric, Period, QuotaUse
from bot.services.digest import ModelUsage, Savings
from bot.services.forecast import forecasts
from bot.services.home import ChannelSetup, ChannelUsage, HomeView
from bot.slack.digest_blocks import digest_message
from bot.slack.home_blocks import home_view
from tests.slack.digest_sample import PARIS, sample_digest

NOW = datetime(2026, 11, 1, 18, 0, tzinfo=timezone.utc)
MONTH = (datetime(2026, 10, 31, 23, tzinfo=timezone.utc), datetime(2026, 11, 30, 23, tzinfo=timezone.utc))
NAMES = {"U1": "Ana", "U2": "Bo"}


def _usd(scope: str, target: str, limit: str, used: str, start: datetime, end: datetime) -> QuotaUse:
    return QuotaUse(scope, target, Metric.USD, Period.MONTH, Decimal(limit), Decimal(used), start, end)


def digest_sample() -> list[dict[str, Any]]:
    """The weekly digest of #C1 on today's chain, posted Monday 2 November 09:00: its USD limit is too young to forecast."""
    quota = _usd("channel", "C1", "5", "0.40", *MONTH)
    digest = sample_digest(
        models=(ModelUsage("gpt-6-luna", 30, Decimal("0.75"), 0), ModelUsage("gpt-5.6-luna", 10, Decimal("0.50"), 0)),
        primary_model="gpt-6-luna",
        savings=Savings("gpt-6-sol", Decimal("12.5"), Decimal("11.25"), 40),
        lifecycle_warnings=(
            "gpt-4o-mini shuts down on 2027-01-14 (in 74 days): FRUGAL_MODELS=gpt-6-luna,gpt-5.6-luna",
        ),
        quotas=(quota,),
        forecasts=tuple(forecasts([quota], MONTH[0] + timedelta(days=1, hours=9))),
    )
    _, blocks = digest_message(digest, NAMES, chart=True)
    return blocks


def home_sample() -> dict[str, Any]:
    """An admin's App Home: their channels, the chain's health, every channel's setup with a forecast."""
    c1 = _usd("channel", "C1", "5", "3.10", *MONTH)
    default = _usd("default", "", "2", "0.40", *MONTH)
    now = MONTH[0] + timedelta(days=15)
    view = HomeView(
        period_start=MONTH[0],
        period_end=MONTH[1],
        channels=(ChannelUsage("C1", 412, 96_300, Decimal("3.10")), ChannelUsage("C2", 57, 11_240, Decimal("0.40"))),
        models=(
            ModelHealth("gpt-6-luna", "healthy"),
            ModelHealth("gpt-5.6-luna", "cooling down", "rate limited (429)", NOW + timedelta(minutes=2)),
            ModelHealth("gpt-5.4-nano", "healthy"),
        ),
        admin=(
            ChannelSetup(
                "C1",
                ChannelUsage("C1", 412, 96_300, Decimal("3.10")),
                (c1,),
                None,
                forecasts=tuple(forecasts([c1], now)),
            ),
            ChannelSetup(
                "C2",
                ChannelUsage("C2", 57, 11_240, Decimal("0.40")),
                (default,),
                None,
                forecasts=tuple(forecasts([default], now)),
            ),
        ),
        admin_hidden=0,
        digests_known=True,
    )
    return home_view(view, PARIS)


def as_text(blocks: list[dict[str, Any]]) -> str:
    """Blocks as Slack shows them, roughly: headers, sections, fields, context lines, dividers, buttons."""
    lines: list[str] = []
    for block in json.loads(json.dumps(blocks)):
        kind = block["type"]
        if kind == "header":
            lines.append(f"**{block['text']['text']}**")
        elif kind == "section":
            if "text" in block:
                lines.append(block["text"]["text"])
            if "fields" in block:
                lines.append("\n\n".join(f["text"] for f in block["fields"]))
        elif kind == "context":
            lines.append(" · ".join(e.get("text", "") for e in block["elements"]))
        elif kind == "divider":
            lines.append("───")
        elif kind == "actions":
            lines.append(" ".join(f"[{e['text']['text']}]" for e in block["elements"]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render() -> str:
    """docs/samples.md."""
    return (
        "# What Frugal posts: samples\n\n"
        "Made by `python -m tests.slack.render_samples docs/samples.md` from the real Block Kit builders\n"
        "(`bot/slack/digest_blocks.py`, `bot/slack/home_blocks.py`) on sample figures, shown as text:\n"
        "bold is `*…*`, italics `_…_`, `<#C1>` is a channel link and `<!date^…>` a date Slack shows in\n"
        "each reader's time zone. `tests/slack/test_samples.py` keeps this file in step with the code.\n\n"
        "## A weekly digest\n\n"
        "Posted in the channel; the chart (`docs/digest-chart.png`) follows in its thread.\n\n"
        "```\n" + as_text(digest_sample()) + "```\n\n"
        "## App Home (an admin)\n\n"
        "```\n" + as_text(home_sample()["blocks"]) + "```\n"
    )


if __name__ == "__main__":
    Path(sys.argv[1] if len(sys.argv) > 1 else "docs/samples.md").write_text(render())
