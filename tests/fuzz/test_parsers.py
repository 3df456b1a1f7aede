"""Fuzzing the pure parsers: the command grammar, markup masking, label lists, mentions, digest times and the quota grammar."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.catalog import format_usd
from bot.ports.quota import Metric, Period
from bot.services.classify import MAX_LABEL_CHARS, MAX_LABELS, MIN_LABELS, ClassifyService, InvalidLabels
from bot.services.errors import InvalidInput
from bot.services.quota_spec import MAX_AMOUNT, InvalidLimit, Limit, format_amount, parse_limit, parse_metric_period
from bot.services.rewrite import DEFAULT_STYLE, STYLES
from bot.slack import markup
from bot.slack.grammar import clean_label, invisible, meaningful, parse_classify, parse_label_list, parse_rewrite
from bot.slack.listeners.digest import BadDigestArgs, parse_time
from bot.slack.listeners.mention import parse_mention
from tests.fuzz.strategies import TRICKY_PIECES, any_text, quota_like, slack_shaped

MANY = settings(max_examples=200, deadline=None)
_ANGLED = re.compile(r"<[^<>]*>")


@MANY
@given(any_text)
@example("formall: hi")
@example("\u200b \ufeff")
def test_parse_rewrite_always_gives_a_known_style_and_stripped_text(text):
    try:
        args = parse_rewrite(text)
    except InvalidInput as err:
        # Only a leading word that is nearly a style's name, with a colon, is refused, and the reply names the style.
        word = text.split(":", 1)[0].strip()
        assert word.lower() not in STYLES and f"`{word}` is not a style" in str(err)
        assert any(f"did you mean `{style}`" in str(err) for style in STYLES)
        return
    assert args.style in STYLES
    assert args.text == args.text.strip()
    if not meaningful(text):
        assert args.text == ""
    elif args.style == DEFAULT_STYLE and not text.strip().lower().startswith(f"{DEFAULT_STYLE}"):
        assert args.text == text.strip()


@MANY
@given(any_text)
@example("[a, b")
@example("[]")
@example("[,] x")
def test_parse_classify_gives_labels_and_text_or_a_clear_error(text):
    try:
        args = parse_classify(text)
    except InvalidInput as err:
        assert str(err)
        assert text.strip().startswith("[") and "]" not in text
        return
    assert args.text == args.text.strip()
    assert (args.labels is not None) == text.strip().startswith("[")


@MANY
@given(any_text)
def test_classify_validation_accepts_only_usable_label_lists(text):
    service = ClassifyService(None, None, max_input_chars=2000)
    try:
        args = parse_classify(text)
        cleaned, labels = service.validate(args.text, args.labels)
    except InvalidLabels as err:
        assert str(err)
        return
    except InvalidInput as err:
        assert str(err)
        return
    assert cleaned and len(cleaned) <= 2000
    if labels is not None:
        assert MIN_LABELS <= len(labels) <= MAX_LABELS
        assert all(label and label == label.strip() and len(label) <= MAX_LABEL_CHARS for label in labels)
        assert len({label.casefold() for label in labels}) == len(labels)


@MANY
@given(
    st.lists(
        st.one_of(st.text(max_size=120), st.sampled_from(TRICKY_PIECES)).filter(
            lambda s: "," not in s and "]" not in s
        ),
        max_size=60,
    )
)
def test_label_list_syntax_round_trips(labels):
    service = ClassifyService(None, None, max_input_chars=2000)
    text = "[" + ", ".join(labels) + "] some text"
    try:
        args = parse_classify(text)
        _, checked = service.validate(args.text, args.labels)
    except InvalidInput as err:
        assert str(err)
        return
    # Whatever was accepted is exactly what was given, once cleaned, and the same list in either syntax.
    assert checked == tuple(clean_label(label) for label in labels)
    assert parse_label_list("[" + ", ".join(labels) + "]") == args.labels
    if not (labels and labels[0].lstrip().startswith("[")):
        # Without brackets, a first label that starts with "[" opens a bracket list: only the bracketed form says it.
        assert parse_label_list(", ".join(labels)) == args.labels


@MANY
@given(
    st.text(max_size=40),
    st.lists(st.sampled_from(["\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad", "\u202e"]), max_size=4),
)
def test_labels_that_differ_only_by_invisible_characters_are_the_same_label(label, invisibles):
    spread = "".join(invisibles[i % len(invisibles)] + char if invisibles else char for i, char in enumerate(label))
    assert clean_label(spread + "".join(invisibles)) == clean_label(label)


@MANY
@given(
    st.lists(
        st.sampled_from([" ", "\t", "\n", "\u00a0", "\u200b", "\u200d", "\u2060", "\ufeff", "\u3164", "\u2800"]),
        max_size=30,
    )
)
def test_text_of_only_whitespace_and_invisible_characters_is_empty(chars):
    text = "".join(chars)
    assert all(invisible(char) for char in text)
    assert meaningful(text) == "" and parse_rewrite(text).text == "" and parse_classify(text).text == ""


@MANY
@given(slack_shaped)
@example("⟦1⟧ and <@U1>")
@example("<@U1> ⟦1⟧ ⟦2⟧")
@example("Q&amp;A &lt;b&gt; <!here>")
def test_markup_masking_round_trips(text):
    masked, restore = markup.mask(text)
    # A model that changes nothing gives back what the user wrote, as Slack sent it, broadcasts defused.
    assert restore(masked) == markup.defuse(text)


@MANY
@given(any_text)
def test_masked_text_hides_every_mention_and_broadcast(text):
    masked, _ = markup.mask(text.replace("&", ""))
    for token in ("<@", "<!", "<#"):
        assert token not in masked or ">" not in masked[masked.index(token) :].split("\n", 1)[0]


@MANY
@given(slack_shaped, any_text, st.integers(0, 600))
@example("see <@U1> and <https://x.io|docs>", "<!channel> <https://evil.example|click> ⟦1⟧", 500)
def test_an_answer_carries_no_ping_or_link_the_asker_did_not_give_and_stays_bounded(text, answer, repeats):
    masked, restore = markup.mask(text)
    answer = answer + "⟦1⟧" * repeats
    posted = restore(answer)
    # In Slack text only markup has a raw "<": every mention or link posted is one the asker wrote.
    given = {markup.defuse(piece) for piece in _ANGLED.findall(text)}
    assert set(_ANGLED.findall(posted)) <= given
    assert "<!here" not in posted and "<!channel" not in posted and "<!everyone" not in posted
    # Each placeholder is restored once at most: the answer cannot grow by repeating one.
    assert len(posted) <= len(markup.escape(answer)) + len(text)


@MANY
@given(any_text, st.sampled_from([None, "UBOT", "U012AB3CD"]))
def test_parse_mention_gives_a_lowercase_word_and_the_rest(text, bot_user_id):
    verb, rest = parse_mention(text, bot_user_id)
    assert verb == verb.lower() and not any(c.isspace() for c in verb) and ":" not in verb
    assert rest == rest.strip()


# --- digest times -------------------------------------------------------------------------------------------


@MANY
@given(st.text(max_size=8))
@example("٠٩:٠٠")
@example("𝟗:𝟎𝟎")
@example("09:00")
def test_a_digest_time_is_ascii_hh_mm_or_a_clear_error(word):
    try:
        at = parse_time(word)
    except BadDigestArgs as err:
        assert "is not a time of day" in str(err)
        return
    assert word.isascii() and f"{at:%H:%M}" == word.zfill(5)


# --- quota grammar ---------------------------------------------------------------------------------------


@MANY
@given(st.one_of(quota_like, any_text))
@example("$5/month")
@example("1.5k tokens/day")
@example("0.0000001 usd/day")
@example("9" * 40 + " tokens/day")
@example("1,,0 requests/day")
@example("٥ requests/day")
def test_parse_limit_gives_a_limit_or_a_clear_error(text):
    try:
        limit = parse_limit(text)
    except InvalidLimit as err:
        assert str(err)
        return
    # Digits are ASCII digits, and commas only ever separate thousands.
    number = text.strip().lstrip("$").split("/")[0]
    assert number.isascii() and ",," not in number and not number.strip().startswith(",")
    assert isinstance(limit, Limit)
    assert Decimal(0) < limit.amount <= MAX_AMOUNT[limit.metric]
    assert str(limit)


@MANY
@given(st.one_of(quota_like, any_text, st.builds("{}/{}".format, st.text(max_size=10), st.text(max_size=10))))
def test_parse_metric_period_gives_a_pair_or_a_clear_error(text):
    try:
        metric, period = parse_metric_period(text)
    except InvalidLimit as err:
        assert str(err)
        return
    assert isinstance(metric, Metric) and isinstance(period, Period)


@st.composite
def limits(draw) -> Limit:
    metric = draw(st.sampled_from(list(Metric)))
    period = draw(st.sampled_from(list(Period)))
    if metric is Metric.USD:
        # Whole cents: what format_usd shows exactly.
        amount = Decimal(draw(st.integers(1, int(MAX_AMOUNT[metric]) * 100))) / 100
        return Limit(amount.normalize(), metric, period)
    return Limit(Decimal(draw(st.integers(1, int(MAX_AMOUNT[metric])))), metric, period)


@MANY
@given(limits())
def test_a_formatted_limit_parses_back_to_itself(limit):
    typed = f"{format_amount(limit.metric, limit.amount)}/{limit.period.value}"
    assert parse_limit(typed) == limit
    assert parse_metric_period(f"{limit.metric.value}/{limit.period.value}") == (limit.metric, limit.period)
    if limit.metric is Metric.USD:
        assert parse_limit(f"{limit.amount:f} usd/{limit.period.value}") == limit
        assert format_usd(limit.amount) in str(limit)
