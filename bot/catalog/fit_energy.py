"""Refit each model's energy coefficients from Jegham et al.'s per-request Wh table.

`python -m bot.catalog.fit_energy` prints the `energy` objects; `--write` stores
them in models.json, so the file's numbers can always be reproduced.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

MODELS_JSON = Path(__file__).with_name("models.json")

# The short form replies cite; the full SOURCE is in `/frugal models` and the README.
CITE = "Jegham et al. 2025"
SOURCE = (
    'Jegham et al. 2025, "How Hungry is AI?", arXiv 2505.09598 v6 (Nov 2025); inferred from API latency, not measured'
)

# (input tokens, output tokens) of the paper's short, medium and long prompts.
SHAPES: tuple[tuple[int, int], ...] = ((100, 300), (1000, 1000), (10000, 1500))

# Wh per request for the short, medium and long shapes (paper v6, Nov 2025).
REFERENCE_WH: dict[str, tuple[str, str, str]] = {
    "gpt-4.1-nano": ("0.207", "0.575", "0.827"),
    "gpt-4.1-mini": ("0.450", "1.545", "2.122"),
    "gpt-4.1": ("0.871", "3.161", "4.833"),
    "gpt-4o-mini": ("0.577", "1.897", "3.098"),
    "gpt-4o": ("0.423", "1.215", "2.875"),
}


def _det(m: Sequence[Sequence[Fraction]]) -> Fraction:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def fit(wh: Sequence[str]) -> tuple[Fraction, Fraction, Fraction]:
    """Solve fixed + a·input + b·output = Wh exactly for the three shapes (Cramer's rule)."""
    rows = [[Fraction(1), Fraction(i), Fraction(o)] for i, o in SHAPES]
    ys = [Fraction(w) for w in wh]
    d = _det(rows)
    fixed, a, b = (_det([[ys[r] if c == k else rows[r][c] for c in range(3)] for r in range(3)]) / d for k in range(3))
    return fixed, a, b


def energy_blocks() -> dict[str, dict[str, float | str]]:
    """The `energy` object of every model in the reference table, keyed by model id."""
    blocks: dict[str, dict[str, float | str]] = {}
    for model_id, wh in REFERENCE_WH.items():
        fixed, a, b = fit(wh)
        blocks[model_id] = {
            "fixed_wh": float(fixed),
            "per_input_token_wh": float(a),
            "per_output_token_wh": float(b),
            "source": SOURCE,
            "cite": CITE,
        }
    return blocks


def main(argv: Sequence[str] | None = None) -> None:
    """Print the fitted energy objects, or write them into models.json."""
    parser = argparse.ArgumentParser(prog="python -m bot.catalog.fit_energy")
    parser.add_argument("--write", action="store_true", help=f"update {MODELS_JSON.name}")
    args = parser.parse_args(argv)
    blocks = energy_blocks()
    if not args.write:
        print(json.dumps(blocks, indent=2, ensure_ascii=False))
        return
    data = json.loads(MODELS_JSON.read_text("utf-8"))
    for model in data["models"]:
        if model["id"] in blocks:
            model["energy"] = blocks[model["id"]]
    MODELS_JSON.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
