"""Fuzzing the pure parsers: the command grammar, markup masking, label lists, mentions and the quota grammar."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.catalog import format_usd
from bot.ports.quota import Metric, Period
from bot.services import markup
from bot.services.classify import MAX_LABEL_CHARS, MAX_LABELS, MIN_LABELS, ClassifyService, InvalidLabels
from bot.services.errors import InvalidInput
from bot.services.quota_spec import MAX_AMOUNT, InvalidLimit, Limit, format_amount, parse_limit, parse_metric_period
from bot.services.rewrite import DEFAULT_STYLE, STYLES
from bot.slack.grammar import parse_classify, parse_rewrite
from bot.slack.listeners.mention import parse_mention
from tests.fuzz.strategies import TRICKY_PIECES, any_text, quota_like

MANY = settings(max_examples=200, deadline=None)


@MANY
@given(any_text)
def test_parse_rewrite_always_gives_a_known_style_and_stripped_text(text):
    args = parse_rewrite(text)
    assert args.style in STYLES
    assert args.text == args.text.strip()
    if args.style == DEFAULT_STYLE and not text.strip().lower().startswith(f"{DEFAULT_STYLE}"):
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
        st.one_of(st.text(max_size=120), st.sampled_from(TRICKY_PIECES)).filter(lambda s: "," not in s and "]" not in s),
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
    # Whatever was accepted is exactly what was given, once trimmed.
    assert checked == tuple(label.strip() for label in labels)


@MANY
@given(any_text)
@example("⟦1⟧ and <@U1>")
@example("<@U1> ⟦1⟧ ⟦2⟧")
def test_markup_masking_round_trips(text):
    masked, pieces = markup.protect(text)
    # A model that changes nothing must give back exactly what the user wrote.
    assert markup.restore(masked, pieces) == text
    for piece in pieces:
        assert piece not in ("", None)


@MANY
@given(any_text)
def test_masked_text_hides_every_mention_and_broadcast(text):
    masked, _ = markup.protect(text)
    for token in ("<@", "<!", "<#"):
        assert token not in masked or ">" not in masked[masked.index(token):].split("\n", 1)[0]


@MANY
@given(any_text, st.sampled_from([None, "UBOT", "U012AB3CD"]))
def test_parse_mention_gives_a_lowercase_word_and_the_rest(text, bot_user_id):
    verb, rest = parse_mention(text, bot_user_id)
    assert verb == verb.lower() and not any(c.isspace() for c in verb) and ":" not in verb
    assert rest == rest.strip()


# --- quota grammar ---------------------------------------------------------------------------------------


@MANY
@given(st.one_of(quota_like, any_text))
@example("$5/month")
@example("1.5k tokens/day")
@example("0.0000001 usd/day")
@example("9" * 40 + " tokens/day")
def test_parse_limit_gives_a_limit_or_a_clear_error(text):
    try:
        limit = parse_limit(text)
    except InvalidLimit as err:
        assert str(err)
        return
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
