"""What the router does about each kind of failure: the error table of docs/models.md as data."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from bot.ports.chat import ErrorKind


class Wait(enum.Enum):
    """How long to wait before retrying the same model."""

    RETRY_AFTER = "as the server's Retry-After says, bounded"
    BACKOFF = "a short backoff"


class Then(enum.Enum):
    """Where to go once the model's own retries are spent."""

    FAIL_OVER = "the next model of the chain"
    LARGER_CONTEXT = "the next model with a larger context window"
    STOP = "nowhere: every model would fail the same way"


class Effect(enum.Enum):
    """What the failure does to the model's health."""

    NONE = "nothing: the request, not the model, was at fault"
    COUNT = "counts toward a cool-down; repeated failures cool the model down"
    COOL_NOW = "cools the model down at once"
    MARK_UNAVAILABLE = "marks the model unavailable in the database for a long cool-down"


@dataclass(frozen=True)
class Rule:
    """The router's answer to one kind of failure."""

    retries: int  # extra tries on the same model
    wait: Wait | None
    then: Then
    effect: Effect
    why: str  # completes "gpt-4.1-nano …" in the fallback note and the failure message
    alert: str | None = None  # the admins' alert ({model}, {status}, {code}); None: no alert


POLICY: dict[ErrorKind, Rule] = {
    ErrorKind.RATE_LIMITED: Rule(1, Wait.RETRY_AFTER, Then.FAIL_OVER, Effect.COUNT, "was rate limited"),
    ErrorKind.NO_CREDIT: Rule(
        0,
        None,
        Then.FAIL_OVER,
        Effect.COOL_NOW,
        "is out of credit",
        "The OpenAI account behind OPENAI_API_KEY is out of credit ({model}: HTTP 429 insufficient_quota). "
        "Frugal fails over to the next model in FRUGAL_MODELS meanwhile. "
        "Fix: add credit or raise the spending limit in OpenAI's billing settings.",
    ),
    ErrorKind.MODEL_NOT_FOUND: Rule(
        0,
        None,
        Then.FAIL_OVER,
        Effect.MARK_UNAVAILABLE,
        "is unavailable (retired, or no access)",
        "{model} does not exist for this API key ({status} {code}): it is retired, misspelled, or the key "
        "has no access. Every replica now skips it and answers with the next model in FRUGAL_MODELS. "
        "Fix: replace it in FRUGAL_MODELS (`frugal check` shows what the endpoint offers).",
    ),
    ErrorKind.CONTEXT_TOO_LONG: Rule(0, None, Then.LARGER_CONTEXT, Effect.NONE, "cannot fit the text"),
    ErrorKind.SERVER_ERROR: Rule(1, Wait.BACKOFF, Then.FAIL_OVER, Effect.COUNT, "had a server error"),
    # A retry after a timeout would double an already long wait; the next model is the quick retry.
    ErrorKind.TIMEOUT: Rule(0, None, Then.FAIL_OVER, Effect.COUNT, "timed out"),
    ErrorKind.CONNECTION: Rule(1, Wait.BACKOFF, Then.FAIL_OVER, Effect.COUNT, "could not be reached"),
    # The key is shared by every model of the chain: failing over would only fail again.
    ErrorKind.AUTH: Rule(
        0,
        None,
        Then.STOP,
        Effect.NONE,
        "refused the API key",
        "The endpoint refused OPENAI_API_KEY ({model}: {status} {code}); no model can answer until it is fixed. "
        "Fix: set a valid OPENAI_API_KEY with access to the models in FRUGAL_MODELS, then restart.",
    ),
    # Another model may accept what this one refused.
    ErrorKind.BAD_REQUEST: Rule(0, None, Then.FAIL_OVER, Effect.NONE, "refused the request"),
    # The router first retries once in the shape the error asks for (router.adapt_shape); this is
    # what happens when no other shape is left to try.
    ErrorKind.UNSUPPORTED_PARAMETER: Rule(0, None, Then.FAIL_OVER, Effect.NONE, "refused a request parameter"),
    # Every model sits behind the same URL: failing over would 404 again, and no model is to blame.
    ErrorKind.ENDPOINT_NOT_FOUND: Rule(
        0,
        None,
        Then.STOP,
        Effect.NONE,
        "answered 404 Not Found for the Chat Completions URL",
        "The model endpoint answered 404 Not Found ({model}: {status}, no model error): OPENAI_BASE_URL "
        "probably points to the wrong place. No model is marked unavailable. "
        "Fix: set OPENAI_BASE_URL to the API root that serves /chat/completions (e.g. https://api.openai.com/v1).",
    ),
}

# Completes "gpt-4.1-nano …" for a model skipped without a call because it no longer answers.
RETIRED_WHY = "is retired"

ALL_FAILED_ALERT = (
    "No model in FRUGAL_MODELS could answer a request ({summary}). Users were told that nothing was "
    "charged and to try again later. `frugal check` and `/frugal models` show each model's state."
)


@dataclass(frozen=True)
class RouterTuning:
    """Retry bounds and cool-down lengths."""

    max_retry_wait: timedelta = timedelta(seconds=2)  # longest Retry-After worth waiting for
    default_retry_wait: timedelta = timedelta(seconds=1)  # a 429 without Retry-After
    backoff: timedelta = timedelta(milliseconds=250)
    failures_to_cool: int = 3  # consecutive failures before a cool-down
    cool_down: timedelta = timedelta(seconds=30)  # first cool-down; doubles on each failed probe
    max_cool_down: timedelta = timedelta(minutes=10)
    no_credit_cool_down: timedelta = timedelta(minutes=10)
    unavailable_for: timedelta = timedelta(hours=24)  # a model that was not found
    marks_ttl: timedelta = timedelta(seconds=60)  # how stale other replicas' marks may be
