import json
from decimal import Decimal

import pytest

from bot.catalog import Catalog, CatalogError, ModelInfo, Price, UnknownModelError
from bot.catalog.catalog import _normalize

BUILTIN = [
    "gpt-4.1-nano",
    "gpt-6-luna",
    "gpt-5.6-luna",
    "gpt-5.4-nano",
    "gpt-6-sol",
    "gpt-5-nano",
    "gpt-5-mini",
    "gpt-5",
    "gpt-4.1-mini",
    "gpt-4.1",
    "gpt-4o-mini",
    "gpt-4o",
]
REASONING = ["gpt-6-luna", "gpt-5.6-luna", "gpt-5.4-nano", "gpt-6-sol", "gpt-5-nano", "gpt-5-mini", "gpt-5"]
CLASSIC = ["gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def write(tmp_path, data) -> str:
    path = tmp_path / "override.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return str(path)


def test_builtin_models_in_file_order(catalog):
    assert [m.id for m in catalog.models] == BUILTIN
    # The savings baseline is a current model, not one that is retiring.
    assert catalog.baseline_model == "gpt-6-sol"
    assert catalog.get("gpt-6-sol").shutdown_date is None


def test_builtin_models_carry_no_prices_of_their_own(catalog):
    # Prices come from genai-prices (tests/catalog/test_pricing.py); the file only overrides.
    assert all(m.price is None for m in catalog.models)


@pytest.mark.parametrize("model_id", REASONING)
def test_reasoning_models_are_called_their_way(catalog, model_id):
    model = catalog.get(model_id)
    assert model.call.token_parameter == "max_completion_tokens"
    assert model.call.temperature is False
    # The lowest effort each accepts: a rewrite or a label needs no deliberation.
    assert model.call.reasoning_effort == (
        "minimal" if model_id.startswith("gpt-5-") or model_id == "gpt-5" else "none"
    )
    # Log-probabilities come only at effort "none" (OpenAI's reasoning-model checklist; docs/models.md).
    assert model.supports_logprobs == (model.call.reasoning_effort == "none")
    assert model.supports_structured_output


@pytest.mark.parametrize("model_id", CLASSIC)
def test_classic_models_take_max_tokens_and_temperature(catalog, model_id):
    model = catalog.get(model_id)
    assert (model.call.token_parameter, model.call.temperature, model.call.reasoning_effort) == (
        "max_tokens",
        True,
        None,
    )
    assert model.supports_logprobs


@pytest.mark.parametrize(
    ("model_id", "shutdown", "replacement"),
    [
        ("gpt-4.1-nano", "2026-10-23", "gpt-5.6-luna"),
        ("gpt-5-nano", "2026-12-11", "gpt-6-luna"),
        ("gpt-5", "2026-12-11", "gpt-6-sol"),
        ("gpt-4o", "2027-01-14", "gpt-6-luna"),
        ("gpt-4o-mini", "2027-01-14", "gpt-6-luna"),
        ("gpt-6-luna", None, None),
    ],
)
def test_shutdown_dates_and_replacements_are_data(catalog, model_id, shutdown, replacement):
    model = catalog.get(model_id)
    assert (model.shutdown_date.isoformat() if model.shutdown_date else None, model.replacement) == (
        shutdown,
        replacement,
    )


def test_the_default_chain_outlives_mid_2027_by_the_data(catalog):
    from bot.config import DEFAULT_MODELS

    first, *successors = DEFAULT_MODELS.split(",")
    assert first == "gpt-4.1-nano"  # the mission's model, first wherever an endpoint still serves it
    for name in successors:
        shutdown = catalog.get(name).shutdown_date
        assert shutdown is None or shutdown.isoformat() >= "2027-06-01"


@pytest.mark.parametrize(
    "model_id, context, max_output",
    [
        ("gpt-4.1-nano", 1_047_576, 32_768),
        ("gpt-4.1-mini", 1_047_576, 32_768),
        ("gpt-4.1", 1_047_576, 32_768),
        ("gpt-4o-mini", 128_000, 16_384),
        ("gpt-4o", 128_000, 16_384),
    ],
)
def test_builtin_limits_and_capabilities(catalog, model_id, context, max_output):
    model = catalog.get(model_id)
    assert (model.context_window, model.max_output_tokens) == (context, max_output)
    assert model.supports_structured_output and model.supports_logprobs
    assert model.energy is not None and "2505.09598" in model.energy.source
    assert model.energy.cite == "Jegham et al. 2025"


@pytest.mark.parametrize("model_id", REASONING)
def test_models_without_published_coefficients_have_no_energy(catalog, model_id):
    assert catalog.get(model_id).energy is None


def test_nano_release_date(catalog):
    assert catalog.get("gpt-4.1-nano").released.isoformat() == "2025-04-14"


@pytest.mark.parametrize(
    "alias, model_id",
    [
        ("4.1-nano", "gpt-4.1-nano"),
        ("nano", "gpt-4.1-nano"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("4.1-mini", "gpt-4.1-mini"),
        ("4.1", "gpt-4.1"),
        ("4o-mini", "gpt-4o-mini"),
        ("4o", "gpt-4o"),
        ("gpt-4o", "gpt-4o"),
    ],
)
def test_resolve_ids_and_aliases(catalog, alias, model_id):
    assert catalog.resolve(alias) == model_id
    assert catalog.get(alias).id == model_id


def test_get_is_exact_and_case_sensitive(catalog):
    assert catalog.get("GPT-4o") is None
    assert catalog.get("gpt-4.1-nano ") is None


def test_normalized_names_are_unambiguous(catalog):
    names = [n for m in catalog.models for n in (m.id, *m.aliases)]
    assert len({_normalize(n) for n in names}) == len(names)


@pytest.mark.parametrize("spelling", ["gpt4.1nano", "gpt_4_1_nano", "GPT-4.1-Nano", "gpt-4.1nano"])
def test_did_you_mean_normalized(catalog, spelling):
    assert catalog.suggest(spelling) == "gpt-4.1-nano"
    with pytest.raises(UnknownModelError) as err:
        catalog.resolve(spelling)
    assert err.value.suggestion == "gpt-4.1-nano"
    assert str(err.value) == f"unknown model '{spelling}' — did you mean 'gpt-4.1-nano'?"


def test_did_you_mean_typo_returns_canonical_id_for_alias(catalog):
    assert catalog.suggest("nan0") == "gpt-4.1-nano"
    assert catalog.suggest("gpt-4o-mni") == "gpt-4o-mini"


@pytest.mark.parametrize("name", ["claude-3-opus", "gpt-9-ultra", ""])
def test_far_off_name_has_no_suggestion(catalog, name):
    assert catalog.suggest(name) is None
    with pytest.raises(UnknownModelError) as err:
        catalog.resolve(name)
    assert err.value.suggestion is None
    assert str(err.value) == f"unknown model {name!r}"


def test_suggest_includes_live_candidates(catalog):
    live = ["gpt-4.1-nano", "o4-mini", "gpt-4.5-preview"]
    assert catalog.suggest("o4mini", live) == "o4-mini"
    assert catalog.suggest("gpt-4.5-previw", live) == "gpt-4.5-preview"
    assert catalog.suggest("GPT4.1-NANO", live) == "gpt-4.1-nano"


def test_unknown_model_error_is_a_lookup_error():
    assert isinstance(UnknownModelError("x"), LookupError)
    assert issubclass(CatalogError, ValueError)


def test_override_changes_only_given_fields(tmp_path):
    path = write(
        tmp_path,
        {
            "models": [
                {"id": "gpt-4.1-nano", "price": {"input": "0.10", "cached_input": "0.025", "output": "0.50"}},
                {"id": "gpt-6-luna", "call": {"reasoning_effort": "low"}},
            ]
        },
    )
    catalog = Catalog.load(path)
    nano = catalog.get("nano")
    assert nano.price == Price(Decimal("0.10"), Decimal("0.025"), Decimal("0.50"))
    luna = catalog.get("gpt-6-luna")
    assert (luna.call.reasoning_effort, luna.call.token_parameter) == ("low", "max_completion_tokens")
    assert nano.context_window == 1_047_576
    assert nano.aliases == ("4.1-nano", "nano", "gpt-4.1-nano-2025-04-14")


def test_override_adds_model_and_baseline(tmp_path):
    path = write(
        tmp_path,
        {
            "baseline_model": "4.1",
            "models": [
                {
                    "id": "o4-mini",
                    "aliases": ["o4m"],
                    "price": {"input": "1.10", "cached_input": "0.275", "output": "4.40"},
                    "context_window": 200000,
                    "shutdown_date": "2027-01-31",
                }
            ],
        },
    )
    catalog = Catalog.load(path)
    assert [m.id for m in catalog.models] == [*BUILTIN, "o4-mini"]
    assert catalog.baseline_model == "gpt-4.1"
    new = catalog.get("o4m")
    assert new.price.cached_input == Decimal("0.275")
    assert new.shutdown_date.isoformat() == "2027-01-31"
    assert (new.max_output_tokens, new.energy, new.supports_structured_output) == (None, None, False)


def test_override_price_as_json_number_stays_exact(tmp_path):
    path = write(
        tmp_path, '{"models": [{"id": "gpt-4o", "price": {"input": 0.1, "cached_input": 0.05, "output": 0.4}}]}'
    )
    assert Catalog.load(path).get("gpt-4o").price.input == Decimal("0.1")


def test_override_null_price_means_unknown(tmp_path):
    path = write(tmp_path, {"models": [{"id": "gpt-4o", "price": None}]})
    assert Catalog.load(path).get("gpt-4o").price is None


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "invalid JSON at line 1"),
        ([], "expected an object"),
        ({"models": {}}, "models: expected a list"),
        ({"models": [{"price": {}}]}, "models[0]: missing 'id'"),
        ({"models": [{"id": "gpt-4o", "prce": {}}]}, "models[0]: unknown field 'prce'"),
        (
            {"models": [{"id": "gpt-4o", "price": {"input": "cheap", "cached_input": "1", "output": "1"}}]},
            "models[0].price.input",
        ),
        (
            {"models": [{"id": "gpt-4o", "price": {"input": "-1", "cached_input": "1", "output": "1"}}]},
            "models[0].price.input",
        ),
        ({"models": [{"id": "gpt-4o", "call": {"token_parameter": "max_output"}}]}, "models[0].call.token_parameter"),
        ({"models": [{"id": "gpt-4o", "call": {"reasoning_effort": "tiny"}}]}, "models[0].call.reasoning_effort"),
        ({"models": [{"id": "gpt-4o", "call": {"temprature": False}}]}, "models[0].call: unknown field 'temprature'"),
        ({"models": [{"id": "gpt-4o", "replacement": "gpt-9"}]}, "replacement 'gpt-9' is not a model"),
        ({"models": [{"id": "x", "price": {"input": "1"}}]}, "models[0].price: missing 'cached_input'"),
        ({"models": [{"id": "gpt-4o", "context_window": "big"}]}, "models[0].context_window"),
        ({"models": [{"id": "gpt-4o", "shutdown_date": "soon"}]}, "models[0].shutdown_date"),
        ({"models": [{"id": "x", "aliases": ["nano"]}]}, "'nano' is used by both"),
        ({"baseline_model": "gpt-9"}, "baseline_model 'gpt-9' is not a model"),
    ],
)
def test_invalid_override_names_file_and_problem(tmp_path, content, problem):
    path = write(tmp_path, content)
    with pytest.raises(CatalogError) as err:
        Catalog.load(path)
    message = str(err.value)
    assert message.startswith(path + ": ")
    assert problem in message
    assert "\n" not in message


def test_missing_override_file(tmp_path):
    path = str(tmp_path / "absent.json")
    with pytest.raises(CatalogError, match="absent.json: cannot read"):
        Catalog.load(path)


def test_catalog_rejects_duplicate_names():
    with pytest.raises(CatalogError):
        Catalog([ModelInfo("a", aliases=("b",)), ModelInfo("b")], "a")
