"""/frugal end to end: the help names every command of the contract; unknown subcommands point to it."""

from __future__ import annotations

import pytest

from bot.slack.grammar import HELP, HELP_POINTER
from bot.slack.listeners.frugal import SUBCOMMANDS
from tests.bolt_tasks import settle_listeners

# The command grammar as CONTRACT.md ("Slack commands") states it.
CONTRACT_GRAMMAR = [
    "/rewrite [style:] text",
    "clear",
    "formal",
    "friendly",
    "concise",
    "grammar",
    "/classify [label, label, ...] text",
    "/usage",
    "/frugal help",
    "/frugal quota set <here|#channel|default|@user|default-user> <N> <requests|tokens|usd>/<day|week|month>",
    "$5/month",
    # Extensions (a `default` target, clearing one limit) may follow these.
    "/frugal quota show [here|#channel",
    "/frugal quota clear <here|#channel",
    "/frugal labels set a, b, c",
    "/frugal digest <daily|weekly|off> [HH:MM]",
    "/frugal digest now",
    "/frugal models",
    "@Frugal rewrite formal: text",
    "@Frugal classify [a, b] text",
    "Rewrite with Frugal",
    "Classify with Frugal",
]


async def _ack_text(frugal, text: str, **fields) -> str:
    response, _ = await frugal.command("/frugal", text, **fields)
    assert response.status == 200
    return (await response.json())["text"]


@pytest.mark.parametrize("text", ["help", "HELP", "", "  help  extra words"])
async def test_help_lists_every_command_of_the_contract(frugal, fake_openai, text):
    answer = await _ack_text(frugal, text)

    missing = [part for part in CONTRACT_GRAMMAR if part not in answer]
    assert missing == []
    assert answer == HELP
    assert fake_openai.requests == []


async def test_help_is_answered_to_anyone_without_an_admin_lookup(frugal, fake_slack):
    await _ack_text(frugal, "help", user_id="UNOBODY")

    assert fake_slack.calls_to("users.info") == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("qouta set here $5/month", "`qouta`"),
        ("Usages", "`Usages`"),
        ("<!channel> hi", "that"),
        ("`oops`", "that"),
    ],
)
async def test_an_unknown_subcommand_names_the_known_ones_and_points_to_the_help(frugal, fake_slack, text, shown):
    answer = await _ack_text(frugal, text)

    assert answer.startswith(f"`/frugal` has no subcommand {shown};")
    for name in SUBCOMMANDS:
        assert f"`{name}`" in answer
    assert answer.endswith(HELP_POINTER)
    assert "<!channel>" not in answer
    await settle_listeners()
    # Nothing else happens: no admin lookup, no message.
    assert [c.method for c in fake_slack.calls if not c.method.startswith("auth.")] == []


async def test_a_subcommand_after_a_newline_is_still_recognised(frugal):
    answer = await _ack_text(frugal, "help\nplease")

    assert answer == HELP


@pytest.mark.parametrize(
    "text",
    ["labels frobnicate", "digest hourly", "digest daily 25:00", "quota", "quota set here lots", "quota show #general"],
)
async def test_every_subcommand_usage_error_points_to_the_help(start_frugal, migrated_url, fake_openai, text):
    frugal = await start_frugal(migrated_url, FRUGAL_ADMINS="U0001")

    answer = await _ack_text(frugal, text, user_id="U0001")

    assert HELP_POINTER in answer
    assert fake_openai.requests == []
