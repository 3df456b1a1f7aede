"""The digest's chart: daily cost by model as stacked bars, each day's total on its bar, drawn to PNG."""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from bot.catalog import format_usd
from bot.services.digest import Digest

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100
PARTIAL_HATCH = "//"
PARTIAL_ALPHA = 0.45
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ChartDay:
    """One bar: the day's label, its cost per model and in all, and whether the day is not over yet."""

    label: str
    by_model: dict[str, Decimal]
    total: Decimal
    partial: bool


def chart_days(digest: Digest) -> list[ChartDay]:
    """The bars of the chart; in a digest "so far" (`/frugal digest now`) the last day is today, not over yet."""
    days = []
    for position, day in enumerate(digest.days):
        partial = not digest.period.complete and position == len(digest.days) - 1
        label = day.day.strftime("%a %-d %b") + ("\n(so far)" if partial else "")
        days.append(ChartDay(label, dict(day.by_model), sum(day.by_model.values(), Decimal(0)), partial))
    return days


def money(value: float | Decimal) -> str:
    """Dollars to the cent for a chart ("$0.80", "$1,234.50"); below a cent, as Frugal writes them elsewhere ("$0.00042")."""
    amount = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if amount == 0 or abs(amount) >= CENT:
        return format_usd(amount.quantize(CENT, ROUND_HALF_UP)) if abs(amount) < 1000 else f"${amount:,.2f}"
    return format_usd(amount)


def chart_figure(digest: Digest) -> Figure | None:
    """The chart as a matplotlib Figure, or None when there is no cost to draw."""
    models = sorted({m for day in digest.days for m, cost in day.by_model.items() if cost > 0})
    if digest.empty or not models:
        return None
    # Imported here: matplotlib is slow to import and only digests need it. The Figure API with the
    # Agg canvas draws off-screen without pyplot's global state, so it is safe in a worker thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    days = chart_days(digest)
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(days)))
    bottom = [0.0] * len(days)
    bars = None
    for model in models:
        heights = [float(day.by_model.get(model, 0)) for day in days]
        bars = axes.bar(positions, heights, bottom=bottom, label=model)
        for bar, day in zip(bars.patches, days, strict=True):
            if day.partial:
                bar.set_hatch(PARTIAL_HATCH)
                bar.set_alpha(PARTIAL_ALPHA)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    # Each day's total on top of its stack (the last model's bars end where the stack does).
    axes.bar_label(bars, labels=[money(day.total) if day.total else "" for day in days], padding=2, fontsize="small")
    axes.set_xticks(positions, [day.label for day in days])
    axes.set_title(
        f"Daily cost by model, {days[0].label.split(chr(10))[0]} – {days[-1].label.split(chr(10))[0]} ({digest.timezone})"
    )
    axes.set_ylabel("Cost")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: money(value)))
    axes.margins(y=0.15)  # room for the totals above the highest bar
    handles, names = axes.get_legend_handles_labels()
    if any(day.partial for day in days):
        handles.append(Patch(facecolor="white", edgecolor="grey", hatch=PARTIAL_HATCH))
        names.append("today, so far")
    axes.legend(handles, names, loc="upper left", fontsize="small")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def daily_cost_chart(digest: Digest) -> bytes | None:
    """A PNG of the last days' cost per model, or None when there is no cost to draw."""
    figure = chart_figure(digest)
    if figure is None:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
