"""The one way Frugal builds Block Kit: slack_sdk's classes, and text cut or split to fit Slack's limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackObjectFormationError

from bot.slack import block_kit as kit

MARKUP = st.sampled_from(
    ["<@U012AB3CD>", "<https://example.com/a/long/path|a link>", "&amp;", "&lt;", " ", "\n", "\n\n"]
)
texts = st.lists(st.one_of(st.text(alphabet="abc xyz", max_size=40), MARKUP), max_size=400).map("".join)


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(10, 3000))
def test_a_cut_fits_and_never_ends_inside_markup_or_an_entity(text, limit):
    cut = kit.cut(text, limit)

    assert len(cut) <= limit
    if cut != text:
        kept = cut.removesuffix(kit.ELLIPSIS)
        assert text.startswith(kept)
        assert kept.count("<") == kept.count(">")
        assert not any(kept.endswith(part) for part in ("&", "&a", "&am", "&amp", "&l", "&lt"))


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(50, 3000))
def test_split_keeps_every_word_in_pieces_that_fit(text, limit):
    pieces = kit.split(text, limit)

    assert all(len(piece) <= limit for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())
    for piece in pieces:
        assert piece.count("<") == piece.count(">")


def test_a_long_text_reads_whole_across_sections_broken_at_paragraphs():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 150 for i in range(12))

    blocks = kit.sections(text)

    assert len(blocks) > 3 and all(len(b["text"]["text"]) <= kit.SECTION_TEXT_LIMIT for b in blocks)
    assert all(b["text"]["text"].startswith("Paragraph") for b in blocks)
    assert " ".join(" ".join(b["text"]["text"] for b in blocks).split()) == " ".join(text.split())


def test_past_the_block_budget_the_last_section_is_cut():
    blocks = kit.sections("word " * 100_000, max_blocks=4)

    assert len(blocks) == 4 and blocks[-1]["text"]["text"].endswith(kit.ELLIPSIS)


def test_every_text_object_is_verbatim_mrkdwn_and_empty_text_is_allowed():
    block = kit.section("")

    assert block == {"type": "section", "text": {"type": "mrkdwn", "text": " ", "verbatim": True}}
    assert kit.context("a", "b")["elements"][1] == {"type": "mrkdwn", "text": "b", "verbatim": True}
    assert all(f["verbatim"] for f in kit.fields(["x" * 2500, "y"])["fields"])
    assert len(kit.fields(["x" * 2500])["fields"][0]["text"]) == kit.FIELD_TEXT_LIMIT


def test_headers_and_button_labels_are_cut_to_slacks_limits():
    assert len(kit.header("h" * 400)["text"]["text"]) == kit.HEADER_TEXT_LIMIT
    button = kit.button("b" * 100, "act", "value", style="primary").to_dict()
    assert len(button["text"]["text"]) == kit.BUTTON_TEXT_LIMIT and button["style"] == "primary"
    assert kit.actions("row", [kit.button("Go", "go", "v")])["block_id"] == "row"


def test_a_button_value_over_slacks_limit_is_refused_by_slack_sdk():
    with pytest.raises(SlackObjectFormationError):
        kit.actions("row", [kit.button("Post", "post", "v" * (kit.BUTTON_VALUE_LIMIT + 1))])


def test_block_kit_is_the_only_module_that_spells_out_blocks():
    import re
    from pathlib import Path

    import bot

    raw = re.compile(
        r"""["'](type)["']\s*:\s*["'](section|context|header|divider|actions|mrkdwn|plain_text|button)["']"""
    )
    root = Path(bot.__file__).parent
    spelled = [str(p.relative_to(root)) for p in root.rglob("*.py") if raw.search(p.read_text("utf-8"))]
    assert spelled == []
