"""The model catalog: built-in model data, operator overrides and did-you-mean."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

BUILTIN_FILE = "models.json"

# Normalized spellings closer than this to a known name are offered as "did you mean".
_SUGGEST_CUTOFF = 0.75

_PRICE_KEYS = ("input", "cached_input", "output")
_OPTIONAL_PRICE_KEYS = ("cache_write",)
_ENERGY_KEYS = ("fixed_wh", "per_input_token_wh", "per_output_token_wh", "source", "cite")
_CALL_KEYS = ("token_parameter", "temperature", "reasoning_effort", "reasoning_allowance")
TOKEN_PARAMETERS = ("max_tokens", "max_completion_tokens")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_TOP_KEYS = ("source", "baseline_model", "models")


class CatalogError(ValueError):
    """The built-in catalog or an operator override file is invalid."""


class UnknownModelError(LookupError):
    """A model name that is neither a catalog id nor an alias."""

    def __init__(self, name: str, suggestion: str | None = None) -> None:
        self.name = name
        self.suggestion = suggestion
        message = f"unknown model {name!r}"
        if suggestion:
            message += f" — did you mean {suggestion!r}?"
        super().__init__(message)


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; a cache write costs `cache_write`, or the input price when None."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    cache_write: Decimal | None = None


@dataclass(frozen=True)
class CallShape:
    """How a model takes a Chat Completions request: the output-cap parameter, temperature, reasoning effort.

    Reasoning models refuse `max_tokens` and any temperature but the default, and spend reasoning
    tokens out of `max_completion_tokens`: `reasoning_allowance` is added to the answer's cap for them.
    """

    token_parameter: str = "max_tokens"
    temperature: bool = True
    reasoning_effort: str | None = None
    reasoning_allowance: int = 0


@dataclass(frozen=True)
class EnergyModel:
    """Estimated Wh per request = fixed + per-input-token × input + per-output-token × output."""

    fixed_wh: float
    per_input_token_wh: float
    per_output_token_wh: float
    source: str
    cite: str  # the short form shown in replies


@dataclass(frozen=True)
class ModelInfo:
    """What Frugal knows about one model; None means unknown."""

    id: str
    aliases: tuple[str, ...] = ()
    price: Price | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_structured_output: bool = False
    supports_logprobs: bool = False
    shutdown_date: date | None = None
    energy: EnergyModel | None = None
    released: date | None = None
    call: CallShape = CallShape()
    replacement: str | None = None  # what OpenAI recommends once it shuts down


def _normalize(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


class Catalog:
    """Known models, looked up by id or alias."""

    def __init__(self, models: Iterable[ModelInfo], baseline_model: str) -> None:
        self._models = tuple(models)
        self._by_name: dict[str, ModelInfo] = {}
        for model in self._models:
            for name in (model.id, *model.aliases):
                owner = self._by_name.setdefault(name, model)
                if owner is not model:
                    raise CatalogError(f"name {name!r} is used by both {owner.id!r} and {model.id!r}")
        for model in self._models:
            if model.replacement is not None and model.replacement not in self._by_name:
                raise CatalogError(f"{model.id!r}: replacement {model.replacement!r} is not a model in the catalog")
        baseline = self._by_name.get(baseline_model)
        if baseline is None:
            raise CatalogError(f"baseline_model {baseline_model!r} is not a model in the catalog")
        self._baseline = baseline.id
        # Ids first, so an alias can never shadow an id with the same normalized spelling.
        self._normalized: dict[str, str] = {}
        for name, model in sorted(self._by_name.items(), key=lambda item: item[0] != item[1].id):
            self._normalized.setdefault(_normalize(name), model.id)

    @classmethod
    def load(cls, override_path: str | os.PathLike[str] | None = None) -> Catalog:
        """Load the built-in catalog, merged with an operator override file if one is given."""
        origin = f"built-in {BUILTIN_FILE}"
        text = resources.files(__package__).joinpath(BUILTIN_FILE).read_text("utf-8")
        models, baseline = _merge({}, None, _parse_json(text, origin), origin)
        if baseline is None:
            raise CatalogError(f"{origin}: missing 'baseline_model'")
        catalog = _build(models, baseline, origin)
        if override_path is None:
            return catalog
        origin = os.fspath(override_path)
        try:
            text = Path(override_path).read_text("utf-8")
        except OSError as exc:
            raise CatalogError(f"{origin}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CatalogError(f"{origin}: not UTF-8 text") from None
        models, baseline = _merge(models, baseline, _parse_json(text, origin), origin)
        return _build(models, baseline, origin)

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        """All models, in file order (override additions last)."""
        return self._models

    @property
    def baseline_model(self) -> str:
        """Id of the model that savings are measured against."""
        return self._baseline

    def get(self, name: str) -> ModelInfo | None:
        """The model with this exact id or alias, or None."""
        return self._by_name.get(name)

    def resolve(self, name: str) -> str:
        """The canonical id for an id or alias; raises UnknownModelError with a suggestion otherwise."""
        model = self._by_name.get(name)
        if model is None:
            raise UnknownModelError(name, self.suggest(name))
        return model.id

    def suggest(self, name: str, candidates: Iterable[str] | None = None) -> str | None:
        """The closest known id (or extra candidate, e.g. a live /v1/models id) to name, or None."""
        index = dict(self._normalized)
        for candidate in candidates or ():
            known = self._by_name.get(candidate)
            key = _normalize(candidate)
            if key:
                index.setdefault(key, known.id if known else candidate)
        key = _normalize(name)
        if key in index:
            return index[key]
        close = difflib.get_close_matches(key, list(index), n=1, cutoff=_SUGGEST_CUTOFF)
        return index[close[0]] if close else None


def output_cap(catalog: Catalog, model: str, answer_tokens: int) -> int:
    """`max_tokens` / `max_completion_tokens` for an answer of up to `answer_tokens`: reasoning models think out of it too."""
    info = catalog.get(model)
    if info is None:
        return answer_tokens
    cap = answer_tokens + info.call.reasoning_allowance
    return min(cap, info.max_output_tokens) if info.max_output_tokens else cap


def _build(models: Mapping[str, ModelInfo], baseline: str, origin: str) -> Catalog:
    try:
        return Catalog(models.values(), baseline)
    except CatalogError as exc:
        raise CatalogError(f"{origin}: {exc}") from None


def _fail(where: str, problem: str) -> NoReturn:
    raise CatalogError(f"{where}: {problem}")


def _parse_json(text: str, origin: str) -> Any:
    try:
        # Decimal keeps prices given as JSON numbers exact too.
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        _fail(origin, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


def _object(value: Any, where: str, keys: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(where, f"expected an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        _fail(where, f"unknown field {unknown[0]!r}")
    return value


def _merge(
    models: Mapping[str, ModelInfo], baseline: str | None, data: Any, origin: str
) -> tuple[dict[str, ModelInfo], str | None]:
    """Apply one catalog document over the models so far: known ids merge, new ids append."""
    top = _object(data, origin, _TOP_KEYS)
    merged = dict(models)
    entries = top.get("models", [])
    if not isinstance(entries, list):
        _fail(f"{origin}: models", "expected a list")
    for i, raw in enumerate(entries):
        where = f"{origin}: models[{i}]"
        entry = _object(raw, where, _ENTRY_PARSERS)
        if "id" not in entry:
            _fail(where, "missing 'id'")
        model_id = _text(entry["id"], f"{where}.id")
        merged[model_id] = _entry(entry, where, merged.get(model_id) or ModelInfo(model_id))
    if "baseline_model" in top:
        baseline = _text(top["baseline_model"], f"{origin}: baseline_model")
    return merged, baseline


def _entry(entry: Mapping[str, Any], where: str, base: ModelInfo) -> ModelInfo:
    values = {f.name: getattr(base, f.name) for f in fields(ModelInfo)}
    for key, raw in entry.items():
        values[key] = _ENTRY_PARSERS[key](raw, f"{where}.{key}", values[key])
    return ModelInfo(**values)


def _text(value: Any, where: str, _base: Any = None) -> str:
    if not isinstance(value, str) or not value:
        _fail(where, f"expected a non-empty string, got {value!r}")
    return value


def _aliases(value: Any, where: str, _base: Any = None) -> tuple[str, ...]:
    if not isinstance(value, list):
        _fail(where, "expected a list of strings")
    return tuple(_text(v, f"{where}[{i}]") for i, v in enumerate(value))


def _count(value: Any, where: str, _base: Any = None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        _fail(where, f"expected a positive integer or null, got {value!r}")
    return value


def _flag(value: Any, where: str, _base: Any = None) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"expected true or false, got {value!r}")
    return value


def _day(value: Any, where: str, _base: Any = None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        _fail(where, f"expected a YYYY-MM-DD date or null, got {value!r}")


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if amount.is_finite() and amount >= 0:
                return amount
    _fail(where, f"expected a non-negative decimal string, got {value!r}")


def _float(value: Any, where: str) -> float:
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    _fail(where, f"expected a number, got {value!r}")


def _partial(
    value: Any, where: str, base: Any, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Given fields over the base object's fields; all keys must end up present."""
    merged = {k: getattr(base, k) for k in (*keys, *optional)} if base is not None else {}
    merged.update(_object(value, where, (*keys, *optional)))
    missing = [k for k in keys if k not in merged]
    if missing:
        _fail(where, f"missing {missing[0]!r}")
    return merged


def _price(value: Any, where: str, base: Price | None) -> Price | None:
    if value is None:
        return None
    given = _partial(value, where, base, _PRICE_KEYS, _OPTIONAL_PRICE_KEYS)
    optional = {k: _decimal(v, f"{where}.{k}") for k in _OPTIONAL_PRICE_KEYS if (v := given.get(k)) is not None}
    return Price(**{k: _decimal(given[k], f"{where}.{k}") for k in _PRICE_KEYS}, **optional)


def _call(value: Any, where: str, base: CallShape) -> CallShape:
    given = {**vars(base), **_object(value, where, _CALL_KEYS)}
    parameter = given["token_parameter"]
    if parameter not in TOKEN_PARAMETERS:
        _fail(f"{where}.token_parameter", f"expected one of {', '.join(TOKEN_PARAMETERS)}, got {parameter!r}")
    effort = given["reasoning_effort"]
    if effort is not None and effort not in REASONING_EFFORTS:
        _fail(f"{where}.reasoning_effort", f"expected one of {', '.join(REASONING_EFFORTS)} or null, got {effort!r}")
    allowance = given["reasoning_allowance"]
    if isinstance(allowance, bool) or not isinstance(allowance, int) or allowance < 0:
        _fail(f"{where}.reasoning_allowance", f"expected a whole number >= 0, got {allowance!r}")
    return CallShape(
        token_parameter=parameter,
        temperature=_flag(given["temperature"], f"{where}.temperature"),
        reasoning_effort=effort,
        reasoning_allowance=allowance,
    )


def _optional_text(value: Any, where: str, _base: Any = None) -> str | None:
    return None if value is None else _text(value, where)


def _energy(value: Any, where: str, base: EnergyModel | None) -> EnergyModel | None:
    if value is None:
        return None
    given = _partial(value, where, base, _ENERGY_KEYS[:-1], _ENERGY_KEYS[-1:])
    return EnergyModel(
        fixed_wh=_float(given["fixed_wh"], f"{where}.fixed_wh"),
        per_input_token_wh=_float(given["per_input_token_wh"], f"{where}.per_input_token_wh"),
        per_output_token_wh=_float(given["per_output_token_wh"], f"{where}.per_output_token_wh"),
        source=_text(given["source"], f"{where}.source"),
        cite=_text(given.get("cite") or given["source"], f"{where}.cite"),
    )


_ENTRY_PARSERS: dict[str, Callable[[Any, str, Any], Any]] = {
    "id": _text,
    "aliases": _aliases,
    "price": _price,
    "context_window": _count,
    "max_output_tokens": _count,
    "supports_structured_output": _flag,
    "supports_logprobs": _flag,
    "shutdown_date": _day,
    "energy": _energy,
    "released": _day,
    "call": _call,
    "replacement": _optional_text,
}
