"""Energy estimates per request, always presented with their source."""

from __future__ import annotations

import math

from .catalog import EnergyModel
from .pricing import TokenUsage


def estimate_wh(energy: EnergyModel | None, usage: TokenUsage) -> float | None:
    """Estimated Wh of a call, or None when the model has no energy data."""
    if energy is None:
        return None
    # The paper gives one figure per prompt shape; cached input is not distinguished.
    wh = (
        energy.fixed_wh
        + energy.per_input_token_wh * usage.prompt_tokens
        + energy.per_output_token_wh * usage.completion_tokens
    )
    # The exact three-point fit has negative terms for some models (gpt-4.1-nano and
    # gpt-4.1-mini per input token, gpt-4.1-mini and gpt-4.1 fixed), which can push
    # shapes far from the paper's below zero; no request uses negative energy.
    return max(0.0, wh)


def describe(wh: float | None, source: str) -> str:
    """An estimate for people, e.g. "≈0.21 Wh (estimate; Jegham et al. 2025)"; "no estimate" without one.

    A model without published coefficients gets none: another model's figures would be a made-up number.
    """
    if wh is None:
        return "energy: no estimate"
    return f"≈{_two_significant(wh)} Wh (estimate; {source})"


def _two_significant(value: float) -> str:
    if value <= 0:
        return "0"
    rounded = float(f"{value:.2g}")
    return f"{rounded:.{max(0, 1 - math.floor(math.log10(rounded)))}f}"
