"""Buttons while the database is away: the answer, already paid for, is shown without them."""

from __future__ import annotations

from decimal import Decimal

from bot.catalog import TokenUsage
from bot.ports.button_texts import ButtonText
from bot.ports.completion import Completion
from bot.ports.store import StoreUnavailable
from bot.services.rewrite import Rewrite
from bot.slack import blocks
from bot.slack.buttons import attach_buttons, keep

ENTRY = ButtonText(team_id="T1", channel_id="C1", user_id="U1", kind="rewrite", text="Hello", original="hi")


class _AwayStore:
    async def put(self, entry):
        raise StoreUnavailable("away")

    async def get(self, button_id):
        raise StoreUnavailable("away")


async def _context_with(store) -> dict:
    context: dict = {}

    async def nothing() -> None:
        return None

    await attach_buttons(store)(context, nothing)
    return context


async def test_keep_gives_no_id_while_the_store_is_away(caplog):
    context = await _context_with(_AwayStore())
    assert await keep(context, ENTRY) is None
    assert "without buttons" in caplog.text and "Hello" not in caplog.text


def test_an_answer_without_an_id_has_no_buttons_and_says_so():
    completion = Completion(
        text="Hello",
        requested_model="gpt-6-luna",
        served_model="gpt-6-luna",
        usage=TokenUsage(10, completion_tokens=2),
        cost_usd=Decimal("0.00001"),
    )
    shown = blocks.rewrite_result(Rewrite(text="Hello", style="clear", completion=completion), None)
    assert [b["type"] for b in shown if b["type"] == "actions"] == []
    assert any(blocks.NO_BUTTONS in str(b) for b in shown)
    with_buttons = blocks.rewrite_result(Rewrite(text="Hello", style="clear", completion=completion), "x" * 22)
    assert [b for b in with_buttons if b["type"] == "actions"]
    assert blocks.post_in_thread_button(None) and "actions" not in str(blocks.post_in_thread_button(None))
