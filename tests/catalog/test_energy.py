import json
from fractions import Fraction

import pytest

from bot.catalog import Catalog, EnergyModel, TokenUsage, describe, estimate_wh
from bot.catalog.fit_energy import MODELS_JSON, REFERENCE_WH, SHAPES, energy_blocks, fit

CATALOG = Catalog.load()


@pytest.mark.parametrize("model_id", REFERENCE_WH)
def test_fit_is_exact(model_id):
    fixed, a, b = fit(REFERENCE_WH[model_id])
    for (inp, out), wh in zip(SHAPES, REFERENCE_WH[model_id], strict=True):
        assert fixed + a * inp + b * out == Fraction(wh)


@pytest.mark.parametrize("model_id", REFERENCE_WH)
def test_catalog_reproduces_reference_shapes(model_id):
    energy = CATALOG.get(model_id).energy
    for (inp, out), wh in zip(SHAPES, REFERENCE_WH[model_id], strict=True):
        assert estimate_wh(energy, TokenUsage(prompt_tokens=inp, completion_tokens=out)) == pytest.approx(
            float(wh), abs=1e-9
        )


def test_models_json_matches_fit():
    stored = {m["id"]: m["energy"] for m in json.loads(MODELS_JSON.read_text("utf-8"))["models"] if m["energy"]}
    assert stored == energy_blocks()


def test_estimate_clamped_at_zero():
    # gpt-4.1-mini's exact fit has a negative fixed term and a negative per-input term.
    mini = CATALOG.get("gpt-4.1-mini").energy
    assert mini.fixed_wh < 0 and mini.per_input_token_wh < 0
    assert estimate_wh(mini, TokenUsage(prompt_tokens=0)) == 0.0
    assert estimate_wh(mini, TokenUsage(prompt_tokens=200_000, completion_tokens=10)) == 0.0


@pytest.mark.parametrize("model_id", REFERENCE_WH)
def test_estimates_never_negative(model_id):
    energy = CATALOG.get(model_id).energy
    for inp in (0, 1, 1_000, 100_000, 1_000_000):
        for out in (0, 1, 1_000, 32_768):
            assert estimate_wh(energy, TokenUsage(prompt_tokens=inp, completion_tokens=out)) >= 0


def test_cached_tokens_count_as_input():
    energy = EnergyModel(0.1, 0.001, 0.002, "s", "s")
    assert estimate_wh(energy, TokenUsage(100, 100, 10)) == pytest.approx(0.22)


def test_unknown_energy():
    assert estimate_wh(None, TokenUsage(10)) is None
    # Never another model's figures: no coefficients, no number.
    assert describe(None, "x") == "energy: no estimate"


def test_describe_says_estimate_and_source():
    assert (
        describe(0.207, "Jegham et al. 2025, arXiv 2505.09598")
        == "≈0.21 Wh (estimate; Jegham et al. 2025, arXiv 2505.09598)"
    )
    assert describe(3.161, "s") == "≈3.2 Wh (estimate; s)"
    assert describe(0.0999, "s") == "≈0.10 Wh (estimate; s)"
    assert describe(0.0, "s") == "≈0 Wh (estimate; s)"
