"""docs/samples.md shows what the builders make today."""

from __future__ import annotations

from pathlib import Path

from tests.slack.render_samples import render

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples.md"


def test_docs_samples_match_the_block_builders():
    assert SAMPLES.read_text() == render(), "run: python -m tests.slack.render_samples docs/samples.md"
