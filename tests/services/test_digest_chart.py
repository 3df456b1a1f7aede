"""The digest's chart: a PNG of daily cost by model, drawn off-screen; matplotlib loaded only to draw."""

from __future__ import annotations

import io
import subprocess
import sys
from decimal import Decimal

from tests.slack.digest_sample import sample_digest


def test_the_chart_is_a_png_of_the_days():
    from matplotlib.image import imread

    from bot.services.digest_chart import DPI, HEIGHT_IN, WIDTH_IN, daily_cost_chart

    png = daily_cost_chart(sample_digest())

    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png))
    assert pixels.shape[:2] == (HEIGHT_IN * DPI, WIDTH_IN * DPI)


def test_no_cost_means_no_chart():
    from bot.services.digest_chart import daily_cost_chart

    quiet = sample_digest(requests=0, failures=())
    free = sample_digest(days=tuple(d.__class__(d.day, {"gpt-4.1-nano": Decimal(0)}) for d in sample_digest().days))

    assert daily_cost_chart(quiet) is None
    assert daily_cost_chart(free) is None


def test_matplotlib_is_imported_only_when_drawing():
    code = (
        "import sys, bot.composition, bot.services.digest_chart as c\n"
        "assert 'matplotlib' not in sys.modules\n"
        "from tests.slack.digest_sample import sample_digest\n"
        "c.daily_cost_chart(sample_digest())\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
