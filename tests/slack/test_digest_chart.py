"""The digest's chart: a PNG of daily cost by model, drawn off-screen; matplotlib loaded only to draw."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal

from bot.ports.digest_store import Frequency
from bot.services.digest import DigestPeriod
from bot.slack.digest_chart import PARTIAL_HATCH, chart_days, chart_figure, money
from tests.slack.digest_chart_sample import NOW, TZ, sample_digest, sample_rows
from tests.slack.digest_sample import PARIS
from tests.slack.digest_sample import sample_digest as made_digest


def _labels(figure) -> list[str]:
    [axes] = figure.axes
    return [t.get_text() for t in axes.texts]


def test_the_chart_is_a_png_of_the_days():
    from matplotlib.image import imread

    from bot.slack.digest_chart import DPI, HEIGHT_IN, WIDTH_IN, daily_cost_chart

    png = daily_cost_chart(made_digest())

    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png))
    assert pixels.shape[:2] == (HEIGHT_IN * DPI, WIDTH_IN * DPI)


def test_no_cost_means_no_chart():
    from bot.slack.digest_chart import daily_cost_chart

    quiet = made_digest(requests=0, failures=())
    free = made_digest(days=tuple(d.__class__(d.day, {"gpt-4.1-nano": Decimal(0)}) for d in made_digest().days))

    assert daily_cost_chart(quiet) is None
    assert daily_cost_chart(free) is None


def test_each_bar_says_its_total_as_money():
    figure = chart_figure(made_digest())

    # The sample's days cost 0.05, 0.15, …, 0.65 dollars: money, not "$ 0.8" or "0.65".
    assert _labels(figure) == ["$0.05", "$0.15", "$0.25", "$0.35", "$0.45", "$0.55", "$0.65"]
    [axes] = figure.axes
    figure.canvas.draw()
    ticks = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch(r"\$[0-9]+\.[0-9]{2,}", t) for t in ticks)


def test_money_is_written_as_everywhere_else_in_frugal():
    assert (
        money(0.8),
        money(0.30000000000000004),
        money(Decimal("0.581")),
        money(Decimal("0.00042")),
        money(12.5),
    ) == ("$0.80", "$0.30", "$0.58", "$0.00042", "$12.50")
    assert (money(0), money(Decimal("1234.5"))) == ("$0.00", "$1,234.50")


def test_a_complete_period_has_no_partial_bar():
    days = chart_days(made_digest())

    assert not any(day.partial for day in days)
    figure = chart_figure(made_digest())
    assert not any(p.get_hatch() for p in figure.axes[0].patches)
    assert "today, so far" not in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


def test_todays_bar_is_marked_partial_in_a_digest_so_far():
    now = datetime(2026, 11, 1, 11, tzinfo=timezone.utc)
    digest = made_digest(period=DigestPeriod.to_date(Frequency.WEEKLY, now, PARIS))

    days = chart_days(digest)
    figure = chart_figure(digest)

    assert [day.partial for day in days] == [False] * 6 + [True]
    assert days[-1].label == "Sun 1 Nov\n(so far)"
    [axes] = figure.axes
    hatched = [p for p in axes.patches if p.get_hatch() == PARTIAL_HATCH]
    assert len(hatched) == 2  # the last day's bar of each of the two models
    assert "today, so far" in [t.get_text() for t in axes.get_legend().get_texts()]
    assert axes.get_xticklabels()[-1].get_text() == "Sun 1 Nov\n(so far)"


async def test_the_docs_chart_renders_from_a_generated_ledger(migrated_url, tmp_path):
    digest = await sample_digest(migrated_url)

    days = chart_days(digest)
    assert len(days) == 7 and days[-1].partial and not any(d.partial for d in days[:-1])
    seeded = {}
    for entry in sample_rows():
        day = entry["created_at"].astimezone(TZ).date()
        seeded[day] = seeded.get(day, Decimal(0)) + entry["cost_usd"]
    assert [d.total for d in days] == [seeded.get(d.day, Decimal(0)) for d in digest.days]
    assert _labels(chart_figure(digest)) == [money(d.total) for d in days]
    assert digest.period.end == NOW


def test_matplotlib_is_imported_only_when_drawing():
    code = (
        "import sys, bot.composition, bot.slack.digest_chart as c\n"
        "assert 'matplotlib' not in sys.modules\n"
        "from tests.slack.digest_sample import sample_digest\n"
        "c.daily_cost_chart(sample_digest())\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
