"""Crashes and wrong answers the fuzzers found, kept as plain tests."""

from __future__ import annotations

from bot.slack import markup


def test_a_placeholder_the_user_typed_is_given_back_unchanged():
    # Found by test_markup_masking_round_trips: "⟦1⟧" typed by the user came back as the first mention.
    masked, restore = markup.mask("<!channel> ⟦1⟧⟦1⟧ ⟦2⟧")

    assert "<!channel>" not in masked
    assert restore(masked) == "@channel ⟦1⟧⟦1⟧ ⟦2⟧"


async def test_a_typed_placeholder_survives_a_rewrite_end_to_end(frugal, fake_openai, fake_slack):
    _, name = await frugal.command("/rewrite", "hey <@U123> see ⟦1⟧ and ⟦7⟧")

    [answer] = await fake_slack.await_calls(f"response_url:{name}")
    # The fake model echoes its input, so the user's text must come back exactly.
    assert answer.params["text"] == "[gpt-4.1-nano] hey <@U123> see ⟦1⟧ and ⟦7⟧"
