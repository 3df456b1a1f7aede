"""What a digest message says, in Block Kit."""

from __future__ import annotations

import json
from decimal import Decimal

from bot.services.digest import Energy
from bot.slack.block_kit import SECTION_TEXT_LIMIT
from bot.slack.digest_blocks import digest_message
from tests.slack.digest_sample import sample_digest


def _all_text(blocks) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_the_digest_says_everything_the_issue_asks_for():
    text, blocks = digest_message(sample_digest(), {"U1": "Ada"}, chart=True)

    body = _all_text(blocks)
    assert text == "Weekly cost digest · Mon 26 Oct – Sun 1 Nov 2026: $1.25 over 40 requests"
    assert blocks[0]["type"] == "header"
    assert ":arrow_up_small: 25% vs the week before ($1.00)" in body  # change against the previous period
    assert ":arrow_up_small: 100% vs the week before (20)" in body
    assert "123.4k in (20k cached) · 45.6k out" in body  # tokens in / cached / out
    assert "• `gpt-4.1-nano` — $0.75 · 30 requests (75%)" in body  # cost by model
    assert "Saved vs `gpt-4o`*\\n$11.25 (90% less)" in body  # savings against the baseline
    assert "10 of 40 requests (25.0%) were answered by another model than `gpt-4.1-nano`" in body
    assert "rate limited ×7, model not found or retired ×3" in body  # fallback reasons
    assert "This channel, per month: $2.50 of $5.00 used (50%), resets Tue 1 Dec 00:00" in body  # quota
    assert "1. Ada — $0.90 (25 requests)" in body and "2. U2 — $0.35 (15 requests)" in body  # top users, no pings
    assert "<@U1>" not in body
    assert ":warning: gpt-4o-mini shuts down on 2026-11-20" in body  # lifecycle
    assert "Energy: ≈12 Wh (estimate; Jegham et al. 2025, arXiv 2505.09598)" in body  # energy, as an estimate
    assert "Daily cost by model, last 7 days: in the thread" in body


def test_a_quiet_period_is_one_short_line():
    digest = sample_digest(requests=0, failures=(), models=(), cost_usd=Decimal(0), top_users=())

    text, blocks = digest_message(digest, {}, chart=False)

    assert text == "No Frugal usage in <#C1> that week (Mon 26 Oct – Sun 1 Nov 2026)."
    assert len(blocks) == 1


def test_missing_figures_are_said_not_invented():
    digest = sample_digest(
        savings=None,
        energy=Energy(0.0, (), 40),
        quotas=(),
        unpriced=2,
        previous_requests=0,
        previous_cost_usd=Decimal(0),
    )

    _, blocks = digest_message(digest, {}, chart=False)

    body = _all_text(blocks)
    assert "unknown (no baseline price)" in body
    assert "Energy: unknown" in body
    assert "*Quota*: none set for this channel." in body
    assert "(+ 2 requests at unknown price)" in body
    assert "none the week before" in body
    assert "in the thread" not in body


def test_no_quota_reader_means_no_quota_section():
    _, blocks = digest_message(sample_digest(quotas=None), {}, chart=False)

    assert "Quota" not in _all_text(blocks)


def test_long_lists_stay_within_slack_limits():
    warnings = tuple(f"model-{i} is retired and was removed from the chain long ago" for i in range(200))

    _, blocks = digest_message(sample_digest(lifecycle_warnings=warnings), {}, chart=False)

    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= SECTION_TEXT_LIMIT


def test_names_are_shown_as_typed_and_cannot_ping_or_link():
    name = "<!channel> <https://evil.example|click me> & <@U9>"

    _, blocks = digest_message(sample_digest(), {"U1": name}, chart=False)

    body = _all_text(blocks)
    assert "1. &lt;!channel&gt; &lt;https://evil.example|click me&gt; &amp; &lt;@U9&gt; — $0.90" in body
    assert "<!channel>" not in body and "<https://evil" not in body and "<@U9>" not in body


def test_every_text_object_links_only_written_markup():
    _, blocks = digest_message(sample_digest(), {"U1": "www.evil.example"}, chart=True)

    texts = [b["text"] for b in blocks if "text" in b and b["type"] != "header"]
    texts += [e for b in blocks for e in b.get("elements", []) + b.get("fields", [])]
    assert texts and all(t["verbatim"] is True for t in texts if t["type"] == "mrkdwn")
