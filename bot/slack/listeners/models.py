"""/frugal models: the model chain, each model's health, listing, shutdown date and price."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from bot.catalog import format_usd
from bot.services.lifecycle import ModelLifecycle, ModelsOverview, ModelView
from bot.slack import block_kit as kit
from bot.slack.block_kit import Block

if TYPE_CHECKING:  # frugal.py imports this module for its SUBCOMMANDS table
    from bot.slack.frugal_request import FrugalRequest

_STATE_ICONS = {"healthy": ":large_green_circle:", "to be probed": ":large_yellow_circle:"}


RETRY_USAGE = "Usage: `/frugal models retry <model>` — clears a model's “unavailable” mark (admins)."


async def models_subcommand(request: FrugalRequest) -> None:
    """/frugal models [retry <model>] — acked at once; the overview may need a call to the endpoint's model list."""
    word, _, rest = request.args.partition(" ")
    if word.lower() == "retry":
        await _retry(request, rest.strip())
        return
    if request.args:
        await request.ack(
            response_type="ephemeral", text=f"Unknown: `/frugal models {request.args[:40]}`. {RETRY_USAGE}"
        )
        return
    await request.ack()
    overview = await request.deps.models.overview()
    await request.respond(
        text=f"Model chain: {' → '.join(row.lifecycle.model for row in overview.rows)}",
        blocks=overview_blocks(overview),
        response_type="ephemeral",
        replace_original=False,
    )


async def _retry(request: FrugalRequest, model: str) -> None:
    if not model or " " in model:
        await request.ack(response_type="ephemeral", text=RETRY_USAGE)
        return
    if not await request.require_admin():
        return
    await request.ack()
    try:
        text = await request.deps.models.retry(model)
    except ValueError as err:
        text = str(err)
    await request.respond(text=text, response_type="ephemeral", replace_original=False)


def overview_blocks(overview: ModelsOverview) -> list[Block]:
    """One section per model of the chain, then the warnings and notes."""
    today = overview.report.checked_at.date()
    blocks: list[Block] = [kit.section("*Model chain* (FRUGAL_MODELS), tried in this order:")]
    blocks += [kit.section(_row(row, today)) for row in overview.rows]
    notes = [f":warning: {warning}" for warning in overview.warnings]
    if overview.report.listing_problem:
        notes.append(f"Note: {overview.report.listing_problem}; shutdown dates come from the model catalog only.")
    sources = sorted({row.lifecycle.energy_source for row in overview.rows if row.lifecycle.energy_source})
    without = [row.lifecycle.model for row in overview.rows if not row.lifecycle.energy_source]
    if sources:
        notes.append("Energy figures are estimates: " + "; ".join(sources) + ".")
    if without:
        notes.append(f"No energy estimate for {', '.join(without)}: no published coefficients.")
    notes.append(f"Models list checked {overview.report.checked_at:%Y-%m-%d %H:%M} UTC.")
    blocks.append(kit.context("\n".join(notes)))
    return blocks


def _row(row: ModelView, today: date) -> str:
    model, health = row.lifecycle, row.health
    role = "primary" if row.position == 0 else f"fallback {row.position}"
    state = f"{_STATE_ICONS.get(health.state, ':red_circle:')} {health.state}"
    if health.until is not None and health.state != "healthy":
        state += (
            f" (from {health.until:%Y-%m-%d %H:%M} UTC)"
            if health.state == "to be probed"
            else f" until {health.until:%Y-%m-%d %H:%M} UTC"
        )
    if health.reason:
        state += f": it {health.reason}"
    listed = {True: "offered by the endpoint", False: "*not offered by the endpoint*", None: "listing unknown"}[
        model.listed
    ]
    if model.retired is not None:
        # Retired is not a health state: it is skipped without a call until the endpoint lists it again.
        state = f":black_circle: retired: it {model.retired.why}; skipped without a call"
        if model.replacement:
            state += f". OpenAI's replacement: *{model.replacement}*"
    days = model.days_left(today)
    if model.shutdown_date is None:
        shutdown = "no shutdown date announced"
    elif days is not None and days <= 0:
        shutdown = f"*shut down on {model.shutdown_date:%Y-%m-%d}*"
    else:
        shutdown = f"shuts down {model.shutdown_date:%Y-%m-%d} ({days} days)"
    return f"*{row.position + 1}. {model.model}* ({role})\n{state}\n{listed} · {shutdown} · {_price(model)}"


def _price(model: ModelLifecycle) -> str:
    price = model.price
    if price is None:
        return "price unknown"
    return (
        f"{format_usd(price.input)} in / {format_usd(price.cached_input)} cached / {format_usd(price.output)} out"
        f" per 1M tokens ({model.price_source})"
    )
