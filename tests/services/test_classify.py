"""Classification through the real router and the fake OpenAI server, with label sets in a real database."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

import pytest

from bot.catalog import Catalog
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.labels import SqlChannelLabels
from bot.infra.db.ledger import SqlLedger
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.chat import TokenLogprob
from bot.ports.completion import CallContext
from bot.ports.store import StoreUnavailable
from bot.router.router import ModelRouter
from bot.services.classify import (
    DEFAULT_LABELS,
    ClassifyService,
    InvalidLabels,
    check_labels,
    label_confidence,
    label_schema,
    parse_label,
)
from bot.services.errors import EmptyInput, InputTooLong
from tests.fakes.openai_server import Reply

CTX = CallContext(team_id="T1", channel_id="C1", user_id="U1", request_key="command:1", task="classify")
LABELS = ("bug", "question", "praise")


@pytest.fixture
async def parts(migrated_url, fake_openai) -> AsyncIterator[tuple[OpenAIChatModel, object]]:
    engine = make_engine(migrated_url)
    model = OpenAIChatModel(api_key="sk-test", base_url=fake_openai.api_url, timeout=5.0)
    yield model, make_sessionmaker(engine)
    await model.close()
    await engine.dispose()


def make_service(parts, chain=("gpt-4.1-nano", "gpt-4o-mini"), catalog: Catalog | None = None) -> ClassifyService:
    model, sessions = parts
    router = ModelRouter(model, catalog or Catalog.load(), SqlLedger(sessions), chain, baseline_model="gpt-4o")
    return ClassifyService(router, SqlChannelLabels(sessions), max_input_chars=2000)


def json_tokens(label: str, label_logprob: float) -> list[tuple[str, float]]:
    """How a model tokenizes {"label":"<label>"}: the label's own token carries the decision."""
    return [('{"', -0.0001), ("label", 0.0), ('":"', 0.0), (label, label_logprob), ('"}', 0.0)]


# --- label lists -------------------------------------------------------------------------------


def test_labels_are_stripped_and_kept_in_order():
    assert check_labels([" bug", "question ", "praise"]) == LABELS


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["only"], "Give at least 2 labels to choose from (got 1)."),
        ([f"l{i}" for i in range(51)], "Give at most 50 labels (got 51)."),
        (["a", "x" * 101], "The label 'xxxxxxxxxxxxxxxxxxxx'… is 101 characters long; the limit is 100."),
        (["a", "", "b"], "Label 2 is empty; separate labels with single commas."),
        (["Bug", "bug"], "The label 'bug' is listed twice."),
    ],
)
def test_bad_label_lists_say_what_is_wrong(raw, message):
    with pytest.raises(InvalidLabels) as refused:
        check_labels(raw)

    assert str(refused.value) == message


def test_limits_are_inclusive():
    assert len(check_labels([f"l{i}" for i in range(50)])) == 50
    assert check_labels(["a", "x" * 100])[1] == "x" * 100


# --- the model side ----------------------------------------------------------------------------


async def test_structured_output_with_an_enum_of_the_labels(parts, fake_openai):
    result = await make_service(parts).classify(CTX, "the export button does nothing", LABELS)

    [call] = fake_openai.requests
    response_format = call.json["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"] == label_schema(LABELS)
    assert response_format["json_schema"]["schema"]["properties"]["label"]["enum"] == list(LABELS)
    assert call.json["logprobs"] is True and call.json["temperature"] == 0.0
    assert call.json["messages"][1] == {"role": "user", "content": "the export button does nothing"}
    # The fake answers the first value of the enum.
    assert (result.label, result.match, result.source, result.labels) == ("bug", "exact", "given", LABELS)
    assert result.confidence is None  # no log-probabilities came back


async def test_confidence_comes_from_the_logprobs(parts, fake_openai):
    fake_openai.script("gpt-4.1-nano", Reply('{"label":"question"}', logprobs=json_tokens("question", math.log(0.9))))

    result = await make_service(parts).classify(CTX, "how do I export?", LABELS)

    assert result.label == "question"
    assert result.confidence == pytest.approx(0.9, abs=1e-3)


async def test_a_model_without_structured_output_gets_a_tolerant_parse(parts, fake_openai, tmp_path):
    override = tmp_path / "catalog.json"
    override.write_text(json.dumps({"models": [{"id": "local-llm", "context_window": 8192}]}))
    fake_openai.script("local-llm", Reply("I think this is a Question."))

    result = await make_service(parts, chain=("local-llm",), catalog=Catalog.load(override)).classify(
        CTX, "how do I export?", LABELS
    )

    [call] = fake_openai.requests
    assert "response_format" not in call.json and "logprobs" not in call.json
    assert '["bug", "question", "praise"]' in call.json["messages"][0]["content"]
    assert (result.label, result.match, result.confidence) == ("question", "exact", None)


async def test_an_answer_that_is_no_label_still_yields_exactly_one_label(parts, fake_openai):
    fake_openai.script("gpt-4.1-nano", Reply('{"label": "praising"}'))

    result = await make_service(parts).classify(CTX, "great work", LABELS)

    assert (result.label, result.match, result.confidence) == ("praise", "closest", None)


async def test_the_completion_is_priced_and_in_the_ledger(parts, fake_openai):
    fake_openai.script("gpt-4.1-nano", Reply('{"label":"bug"}', prompt_tokens=120, completion_tokens=6))

    result = await make_service(parts).classify(CTX, "crash on save", LABELS)

    assert result.completion.served_model == "gpt-4.1-nano"
    assert str(result.completion.cost_usd.normalize()) == "0.0000144"  # 120 × $0.10 + 6 × $0.40 per million


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"label": "question"}', ("question", "exact")),
        ('```json\n{"label": "Question"}\n```', ("question", "exact")),
        ('"praise"', ("praise", "exact")),
        ("  BUG. ", ("bug", "exact")),
        ("It is a question, not a bug.", ("question", "exact")),
        ("xyzzy", None),
    ],
)
def test_parse_label(answer, expected):
    label, match = parse_label(answer, LABELS)

    assert label in LABELS
    if expected is not None:
        assert (label, match) == expected
    else:
        assert match == "closest"


def test_a_longer_label_is_not_also_a_mention_of_a_shorter_one():
    assert parse_label("Clearly a bug report.", ("bug", "bug report", "idea")) == ("bug report", "exact")


def test_confidence_sums_the_tokens_that_spell_the_label():
    answer = '{"label":"bug report"}'
    tokens = [
        TokenLogprob('{"', 0.0),
        TokenLogprob("label", 0.0),
        TokenLogprob('":"', 0.0),
        TokenLogprob("bug", math.log(0.8)),
        TokenLogprob(" report", math.log(0.5)),
        TokenLogprob('"}', 0.0),
    ]

    assert label_confidence(answer, "bug report", tokens) == pytest.approx(0.4)
    assert label_confidence(answer, "bug report", None) is None
    assert label_confidence(answer, "bug report", tokens[:-1]) is None  # tokens that do not spell the answer


# --- channel label sets ------------------------------------------------------------------------


async def test_without_labels_the_default_set_is_used(parts, fake_openai):
    result = await make_service(parts).classify(CTX, "hello all")

    assert (result.source, result.labels) == ("default", DEFAULT_LABELS)
    schema = fake_openai.requests[0].json["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == list(DEFAULT_LABELS)


async def test_a_channel_label_set_is_used_in_that_channel_only(parts, fake_openai):
    service = make_service(parts)
    stored = await service.set_channel_labels("T1", "C1", [" urgent", "later "], "UADMIN")

    here = await service.classify(CTX, "server is down")
    elsewhere = await service.classify(CallContext("T1", "C2", "U1", "command:2", "classify"), "server is down")
    other_team = await service.labels_for("T2", "C1")

    assert stored == ("urgent", "later")
    assert (here.source, here.labels, here.label) == ("channel", ("urgent", "later"), "urgent")
    assert (elsewhere.source, elsewhere.labels) == ("default", DEFAULT_LABELS)
    assert other_team == (DEFAULT_LABELS, "default")


async def test_labels_given_in_the_command_win_over_the_channels(parts):
    service = make_service(parts)
    await service.set_channel_labels("T1", "C1", ["urgent", "later"], "UADMIN")

    result = await service.classify(CTX, "server is down", ["p1", "p2"])

    assert (result.source, result.labels) == ("given", ("p1", "p2"))


async def test_setting_bad_labels_changes_nothing(parts):
    service = make_service(parts)
    await service.set_channel_labels("T1", "C1", ["urgent", "later"], "UADMIN")

    with pytest.raises(InvalidLabels):
        await service.set_channel_labels("T1", "C1", ["only one"], "UADMIN")

    assert await service.labels_for("T1", "C1") == (("urgent", "later"), "channel")


async def test_clearing_goes_back_to_the_default(parts):
    service = make_service(parts)
    await service.set_channel_labels("T1", "C1", ["urgent", "later"], "UADMIN")
    await service.set_channel_labels("T1", "C1", ["now", "soon", "never"], "UADMIN")

    assert await service.labels_for("T1", "C1") == (("now", "soon", "never"), "channel")
    assert await service.clear_channel_labels("T1", "C1") is True
    assert await service.clear_channel_labels("T1", "C1") is False
    assert await service.labels_for("T1", "C1") == (DEFAULT_LABELS, "default")


# --- bad input never reaches the model --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "error"),
    [
        ("   ", LABELS, EmptyInput),
        ("x" * 2001, LABELS, InputTooLong),
        ("fine text", ("one",), InvalidLabels),
        ("fine text", ("a", "x" * 101), InvalidLabels),
    ],
)
async def test_bad_input_is_refused_before_any_model_call(parts, fake_openai, text, labels, error):
    with pytest.raises(error):
        await make_service(parts).classify(CTX, text, labels)

    assert fake_openai.requests == []


class _AwayCache:
    """A classify cache whose database is away: every call raises StoreUnavailable."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def get(self, key, since):
        self.calls.append("get")
        raise StoreUnavailable("away")

    async def put(self, key, team_id, entry):
        self.calls.append("put")
        raise StoreUnavailable("away")

    async def purge(self, before):
        raise StoreUnavailable("away")


async def test_with_the_cache_away_the_paid_answer_is_still_given(parts, fake_openai):
    model, sessions = parts
    router = ModelRouter(model, Catalog.load(), SqlLedger(sessions), ("gpt-4.1-nano",), baseline_model="gpt-4o")
    cache = _AwayCache()
    service = ClassifyService(router, SqlChannelLabels(sessions), max_input_chars=2000, cache=cache)
    fake_openai.script("gpt-4.1-nano", Reply(json.dumps({"label": "bug"}), logprobs=json_tokens("bug", -0.01)))

    result = await service.classify(CTX, "it crashes", LABELS)

    assert (result.label, result.cached) == ("bug", False)
    assert cache.calls == ["get", "put"]
    assert len(fake_openai.requests) == 1
