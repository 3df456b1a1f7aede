"""/frugal models: the model chain, each model's health, listing, shutdown date and price."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from bot.catalog import Price
from bot.services.lifecycle import ModelsOverview, ModelView

if TYPE_CHECKING:  # frugal.py imports this module for its SUBCOMMANDS table
    from bot.slack.listeners.frugal import FrugalRequest

_STATE_ICONS = {"healthy": ":large_green_circle:", "to be probed": ":large_yellow_circle:"}


async def models_subcommand(request: FrugalRequest) -> None:
    """/frugal models — acked at once; the overview may need a call to the endpoint's model list."""
    await request.ack()
    overview = await request.deps.models.overview()
    await request.respond(
        text=f"Model chain: {' → '.join(row.lifecycle.model for row in overview.rows)}",
        blocks=overview_blocks(overview),
        response_type="ephemeral",
        replace_original=False,
    )


def overview_blocks(overview: ModelsOverview) -> list[dict[str, Any]]:
    """One section per model of the chain, then the warnings and notes."""
    today = overview.report.checked_at.date()
    blocks: list[dict[str, Any]] = [_section("*Model chain* (FRUGAL_MODELS), tried in this order:")]
    blocks += [_section(_row(row, today)) for row in overview.rows]
    notes = [f":warning: {warning}" for warning in overview.warnings]
    if overview.report.listing_problem:
        notes.append(f"Note: {overview.report.listing_problem}; shutdown dates come from the model catalog only.")
    notes.append(f"Models list checked {overview.report.checked_at:%Y-%m-%d %H:%M} UTC.")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(notes)[:3000]}]})
    return blocks


def _row(row: ModelView, today: date) -> str:
    model, health = row.lifecycle, row.health
    role = "primary" if row.position == 0 else f"fallback {row.position}"
    state = f"{_STATE_ICONS.get(health.state, ':red_circle:')} {health.state}"
    if health.until is not None and health.state != "healthy":
        state += f" (from {health.until:%Y-%m-%d %H:%M} UTC)" if health.state == "to be probed" else f" until {health.until:%Y-%m-%d %H:%M} UTC"
    if health.reason:
        state += f": it {health.reason}"
    listed = {True: "offered by the endpoint", False: "*not offered by the endpoint*", None: "listing unknown"}[model.listed]
    days = model.days_left(today)
    if model.shutdown_date is None:
        shutdown = "no shutdown date announced"
    elif days is not None and days < 0:
        shutdown = f"*shut down on {model.shutdown_date:%Y-%m-%d}*"
    else:
        shutdown = f"shuts down {model.shutdown_date:%Y-%m-%d} ({days} days)"
    return f"*{row.position + 1}. {model.model}* ({role})\n{state}\n{listed} · {shutdown} · {_price(model.price)}"


def _price(price: Price | None) -> str:
    if price is None:
        return "price unknown"
    return f"${price.input} in / ${price.cached_input} cached / ${price.output} out per 1M tokens"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
