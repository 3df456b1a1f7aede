"""Hypothesis strategies for what people type into Slack, hostile bits included."""

from __future__ import annotations

from hypothesis import strategies as st

# Pieces that matter to Frugal's parsers: Slack markup, brackets, style prefixes, placeholders, odd characters.
TRICKY_PIECES = [
    "<@U012AB3CD>",
    "<@UBOT>",
    "<@W0001|alice>",
    "<!channel>",
    "<!here>",
    "<!subteam^S1|@team>",
    "<#C0001|general>",
    "<https://example.com|a link>",
    "<mailto:a@b.c>",
    "```code\nblock```",
    "```",
    "`inline`",
    "`",
    ":tada:",
    ":+1:",
    "[",
    "]",
    "[a, b]",
    "[bug, question]",
    ",",
    ", ,",
    "formal:",
    "grammar:",
    "clear :",
    "FORMAL:",
    "style:",
    "⟦1⟧",
    "⟦0⟧",
    "⟦99⟧",
    "⟦",
    "⟧",
    "&amp;",
    "&lt;",
    "<",
    ">",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\n",
    "\t",
    " ",
    "\u202e",
    "\u200b",
    "\ufeff",
    "é",
    "ſ",
    "\u212a",
    "日本語",
    "😀",
    "🏳️‍🌈",
    "\U0010ffff",
    "\ud7ff",
]

slack_text = st.lists(st.one_of(st.text(max_size=20), st.sampled_from(TRICKY_PIECES)), max_size=12).map("".join)

# Huge inputs too: around and far over the 2,000-character limit.
huge_text = st.builds(
    lambda piece, n: piece * n, st.sampled_from(["x", "é ", "<@U1> ", "😀", "[a, b] "]), st.integers(0, 3000)
)

any_text = st.one_of(slack_text, huge_text, st.text())

# Things that look like quota limits ("200 requests/day", "$5/month"), near misses included.
quota_like = st.builds(
    "{}{}{}{}{}/{}{}".format,
    st.sampled_from(["", "$", " ", "-", "+"]),
    st.one_of(
        st.integers(0, 10**13).map(str), st.decimals(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=8)
    ),
    st.sampled_from(["", "k", "m", "K", "\u212a", " k", "e5", ",000"]),
    st.sampled_from(["", " "]),
    st.sampled_from(["requests", "request", "tokens", "usd", "USD", "dollars", "requeſts", "", "tokens "]),
    st.sampled_from(["day", "week", "month", "Day", "year", "", " day", "day/day", "dаy"]),
    st.sampled_from(["", " ", "\n", "x"]),
)

# Text as Slack sends it: what people typed with &, < and > escaped, and markup that Slack itself writes.
SLACK_MARKUP = [
    "<@U012AB3CD>",
    "<@W0001|alice>",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S1|@team>",
    "<#C0001|general>",
    "<https://example.com|a link>",
    "<mailto:a@b.c>",
    "```code\nblock```",
    "`inline`",
    ":tada:",
    "⟦1⟧",
    "⟦99⟧",
]
slack_shaped = st.lists(
    st.one_of(
        st.text(max_size=20).map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")),
        st.sampled_from(SLACK_MARKUP),
    ),
    max_size=12,
).map("".join)
