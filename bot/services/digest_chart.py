"""The digest's chart: daily cost by model as stacked bars, drawn to PNG."""

from __future__ import annotations

import io

from bot.services.digest import Digest

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100


def daily_cost_chart(digest: Digest) -> bytes | None:
    """A PNG of the last days' cost per model, or None when there is no cost to draw."""
    models = sorted({m for day in digest.days for m, cost in day.by_model.items() if cost > 0})
    if digest.empty or not models:
        return None
    # Imported here: matplotlib is slow to import and only digests need it. The Figure API with the
    # Agg canvas draws off-screen without pyplot's global state, so it is safe in a worker thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [day.day.strftime("%a %-d %b") for day in digest.days]
    bottom = [0.0] * len(digest.days)
    for model in models:
        heights = [float(day.by_model.get(model, 0)) for day in digest.days]
        axes.bar(labels, heights, bottom=bottom, label=model)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_title(f"Daily cost by model, {labels[0]} – {labels[-1]} ({digest.timezone})")
    axes.set_ylabel("USD")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"${value:,.4g}"))
    axes.legend(loc="upper left", fontsize="small")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
