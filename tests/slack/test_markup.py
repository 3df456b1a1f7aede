"""Slack markup: what Frugal may post of it, and masking it from the model."""

from __future__ import annotations

from bot.slack import markup


def test_outside_text_is_escaped_and_slack_text_decoded_exactly():
    assert markup.escape("a & <b> &amp;") == "a &amp; &lt;b&gt; &amp;amp;"
    assert markup.unescape("a &amp; &lt;b&gt; &amp;amp; &quot;") == "a & <b> &amp; &quot;"
    assert markup.unescape(markup.escape("Q&A <3 &lt;")) == "Q&A <3 &lt;"


def test_broadcasts_are_defused_and_other_markup_kept():
    text = "<!here> <!channel|channel> <!EVERYONE> <!group> <@U1> <#C1|ops> <https://x.io|x> <!subteam^S1|@team>"

    assert markup.defuse(text) == "@here @channel @everyone @group <@U1> <#C1|ops> <https://x.io|x> <!subteam^S1|@team>"


def test_the_model_sees_placeholders_and_characters_and_its_answer_comes_back_fit_to_post():
    masked, restore = markup.mask("Q&amp;A with <@W222> at <https://x.io|docs> :tada: `a<b`")

    assert masked == "Q&A with ⟦1⟧ at ⟦2⟧ ⟦3⟧ ⟦4⟧"
    assert (
        restore("<b>Q&A</b> ⟦2⟧ ⟦1⟧ ⟦1⟧ ⟦9⟧ ⟦3⟧") == "&lt;b&gt;Q&amp;A&lt;/b&gt; <https://x.io|docs> <@W222>   :tada:"
    )


def test_a_placeholder_repeated_500_times_is_restored_once():
    _, restore = markup.mask("```" + "x" * 3000 + "``` ok")

    assert len(restore("⟦1⟧" * 500)) == 3006
