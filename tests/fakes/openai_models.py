"""OpenAI's models as the fake serves them: which reason, which give logprobs, when each shuts down.

Gathered from OpenAI's deprecations page and model pages; the facts and their sources are in docs/models.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

# Accepted `reasoning_effort` values per family, from each model's page on developers.openai.com.
O_SERIES_EFFORTS = ("low", "medium", "high")
GPT5_EFFORTS = ("minimal", "low", "medium", "high")
GPT5_4_EFFORTS = ("none", "low", "medium", "high", "xhigh")
GPT5_6_EFFORTS = ("none", "low", "medium", "high", "xhigh", "max")

# Reasoning tokens a reply spends when the test does not say: none at the lowest efforts, more above.
DEFAULT_REASONING_TOKENS: Mapping[str, int] = MappingProxyType(
    {"none": 0, "minimal": 0, "low": 64, "medium": 256, "high": 1024, "xhigh": 2048, "max": 4096}
)


@dataclass(frozen=True)
class ModelSpec:
    """How one model is called and when it shuts down.

    ``logprobs``: whether it can return log-probabilities; a reasoning model does so only with
    ``reasoning_effort: "none"``, and only if it accepts that value. ``efforts``: the
    ``reasoning_effort`` values it accepts (empty: not a reasoning model, the parameter is refused).
    ``default_effort``: the effort it uses when the request names none.
    """

    reasoning: bool = False
    logprobs: bool = True
    shutdown_date: date | None = None
    efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    released: date | None = None

    @property
    def created(self) -> int:
        """Unix time for the listing's ``created`` field (a fixed instant when the release date is unknown)."""
        if self.released is None:
            return 1700000000
        return int((self.released - date(1970, 1, 1)).total_seconds())


def _chat(shutdown: date | None, released: date | None) -> ModelSpec:
    return ModelSpec(shutdown_date=shutdown, released=released)


def _reasoning(
    efforts: tuple[str, ...], default: str, shutdown: date | None, released: date | None, logprobs: bool
) -> ModelSpec:
    return ModelSpec(True, logprobs, shutdown, efforts, default, released)


_OCT_23 = date(2026, 10, 23)
_DEC_11 = date(2026, 12, 11)
_JAN_14 = date(2027, 1, 14)
_GPT5_RELEASE = date(2025, 8, 7)
_GPT6_RELEASE = date(2026, 9, 22)

MODEL_TABLE: Mapping[str, ModelSpec] = MappingProxyType(
    {
        # Shut down on 2026-10-23.
        "gpt-4.1-nano": _chat(_OCT_23, date(2025, 4, 14)),
        "gpt-4.1-nano-2025-04-14": _chat(_OCT_23, date(2025, 4, 14)),
        "gpt-3.5-turbo": _chat(_OCT_23, date(2023, 3, 1)),
        "gpt-4": _chat(_OCT_23, date(2023, 3, 14)),
        "gpt-4-turbo": _chat(_OCT_23, date(2024, 4, 9)),
        "o1": _reasoning(O_SERIES_EFFORTS, "medium", _OCT_23, date(2024, 12, 17), logprobs=False),
        "o3-mini": _reasoning(O_SERIES_EFFORTS, "medium", _OCT_23, date(2025, 1, 31), logprobs=False),
        "o4-mini": _reasoning(O_SERIES_EFFORTS, "medium", _OCT_23, date(2025, 4, 16), logprobs=False),
        # Shut down on 2026-12-11.
        "gpt-5": _reasoning(GPT5_EFFORTS, "medium", _DEC_11, _GPT5_RELEASE, logprobs=False),
        "gpt-5-2025-08-07": _reasoning(GPT5_EFFORTS, "medium", _DEC_11, _GPT5_RELEASE, logprobs=False),
        "gpt-5-mini": _reasoning(GPT5_EFFORTS, "medium", _DEC_11, _GPT5_RELEASE, logprobs=False),
        "gpt-5-mini-2025-08-07": _reasoning(GPT5_EFFORTS, "medium", _DEC_11, _GPT5_RELEASE, logprobs=False),
        "gpt-5-nano": _reasoning(GPT5_EFFORTS, "medium", _DEC_11, _GPT5_RELEASE, logprobs=False),
        "gpt-5-nano-2025-08-07": _reasoning(GPT5_EFFORTS, "medium", _DEC_11, _GPT5_RELEASE, logprobs=False),
        "o3": _reasoning(O_SERIES_EFFORTS, "medium", _DEC_11, date(2025, 4, 16), logprobs=False),
        # Shut down on 2027-01-14.
        "gpt-4o": _chat(_JAN_14, date(2024, 5, 13)),
        "gpt-4o-2024-08-06": _chat(_JAN_14, date(2024, 8, 6)),
        "gpt-4o-2024-11-20": _chat(_JAN_14, date(2024, 11, 20)),
        "gpt-4o-mini": _chat(_JAN_14, date(2024, 7, 18)),
        "gpt-4o-mini-2024-07-18": _chat(_JAN_14, date(2024, 7, 18)),
        "gpt-4.1": _chat(_JAN_14, date(2025, 4, 14)),
        "gpt-4.1-2025-04-14": _chat(_JAN_14, date(2025, 4, 14)),
        "gpt-4.1-mini": _chat(_JAN_14, date(2025, 4, 14)),
        "gpt-4.1-mini-2025-04-14": _chat(_JAN_14, date(2025, 4, 14)),
        # No shutdown date announced.
        "gpt-5.4-nano": _reasoning(GPT5_4_EFFORTS, "none", None, date(2026, 3, 17), logprobs=True),
        "gpt-5.6-luna": _reasoning(GPT5_6_EFFORTS, "medium", None, None, logprobs=True),
        "gpt-6-luna": _reasoning(GPT5_6_EFFORTS, "medium", None, _GPT6_RELEASE, logprobs=True),
        "gpt-6-sol": _reasoning(GPT5_6_EFFORTS, "medium", None, _GPT6_RELEASE, logprobs=True),
    }
)


def is_served(spec: ModelSpec | None, today: date) -> bool:
    """OpenAI serves a model it knows until its shutdown date (on that day it no longer answers)."""
    return spec is not None and (spec.shutdown_date is None or today < spec.shutdown_date)
