"""Frugal uses only the public APIs of slack_bolt, slack_sdk and openai: nothing named `_x`, no internal module.

A private name can change in any patch release. The walk reads bot/ with ast and refuses:
- `from lib… import _x`, and any import of a module whose path has a `_x` part or an internal module;
- `lib_name._x` where lib_name was imported from one of the libraries (a module, a class, a function);
- a class deriving from a library class that defines or calls (through super()) one of its `_x` methods.
"""

from __future__ import annotations

import ast
import importlib
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

LIBRARIES = ("slack_bolt", "slack_sdk", "openai")
# Modules with public-looking names that the libraries keep for themselves.
INTERNAL_MODULES = frozenset({"internal_utils", "internals", "internal"})
BOT = Path(__file__).resolve().parents[1] / "bot"


@dataclass(frozen=True)
class Violation:
    """One use of a private name: where, and what."""

    where: str
    what: str


def _library(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in LIBRARIES


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_module(module: str) -> str | None:
    for part in module.split(".")[1:]:
        if _private(part) or part in INTERNAL_MODULES:
            return part
    return None


def violations(source: str, where: str = "<source>") -> list[Violation]:
    """Every use of a private slack_bolt / slack_sdk / openai name in `source`."""
    tree = ast.parse(source)
    found: list[Violation] = []
    imported: dict[str, str] = {}  # local name -> the library object's dotted path

    def add(node: ast.AST, what: str) -> None:
        found.append(Violation(f"{where}:{getattr(node, 'lineno', 0)}", what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _library(alias.name):
                    continue
                if part := _private_module(alias.name):
                    add(node, f"import {alias.name} (private module {part})")
                local = alias.asname or alias.name.split(".")[0]
                imported[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _library(node.module):
            assert node.module is not None
            if part := _private_module(node.module):
                add(node, f"from {node.module} import … (private module {part})")
            for alias in node.names:
                if _private(alias.name):
                    add(node, f"from {node.module} import {alias.name}")
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                if _private(root.attr):
                    break
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                add(node, f"{ast.unparse(node)} (private attribute of {imported[root.id]})")
        elif isinstance(node, ast.ClassDef):
            found.extend(_private_overrides(node, imported, where))
    return found


def _private_overrides(cls: ast.ClassDef, imported: dict[str, str], where: str) -> list[Violation]:
    """A library class's private methods, defined again or called through super() in a subclass of it."""
    private: set[str] = set()
    for base in cls.bases:
        name = base.id if isinstance(base, ast.Name) else None
        if name in imported:
            private |= {attr for attr in dir(_resolve(imported[name])) if _private(attr)}
    if not private:
        return []
    found = []
    for node in ast.walk(cls):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in private:
            found.append(Violation(f"{where}:{node.lineno}", f"{cls.name}.{node.name} overrides a private method"))
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in private
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "super"
        ):
            found.append(Violation(f"{where}:{node.lineno}", f"super().{node.attr} in {cls.name}"))
    return found


def _resolve(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return importlib.import_module(dotted)


def test_bot_uses_no_private_name_of_bolt_slack_sdk_or_openai():
    found = [
        violation
        for path in sorted(BOT.rglob("*.py"))
        for violation in violations(path.read_text("utf-8"), str(path.relative_to(BOT.parent)))
    ]

    assert found == [], "\n".join(f"{v.where}: {v.what}" for v in found)


@pytest.mark.parametrize(
    "source",
    [
        "from slack_bolt.context.respond.internals import _build_message",
        "from slack_sdk.web.internal_utils import get_user_agent",
        "from openai._base_client import AsyncAPIClient",
        "import openai._client",
        "import slack_sdk.web.internal_utils as utils",
        "from openai import _exceptions",
        "import openai\nopenai._utils.is_given(1)",
        "from slack_sdk import web\nweb._private_thing",
        "from slack_bolt.async_app import AsyncApp\nAsyncApp._init_context",
        """
        from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

        class Mine(AsyncRateLimitErrorRetryHandler):
            async def _can_retry_async(self, **kwargs):
                return True
        """,
        """
        from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

        class Mine(AsyncRateLimitErrorRetryHandler):
            async def can_retry_async(self, **kwargs):
                return await super()._can_retry_async(**kwargs)
        """,
    ],
)
def test_each_kind_of_private_use_is_caught(source):
    assert violations(textwrap.dedent(source)), source


@pytest.mark.parametrize(
    "source",
    [
        "from slack_sdk.webhook.async_client import AsyncWebhookClient",
        "from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler",
        "import openai\nopenai.AsyncOpenAI.__init__",
        "from bot.infra.db import _private_of_ours\nfrom aiohttp import web\nweb._x",
        """
        from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

        class Mine(AsyncRateLimitErrorRetryHandler):
            async def can_retry_async(self, **kwargs):
                self._own = True
                return await super().can_retry_async(**kwargs)
        """,
    ],
)
def test_public_uses_and_other_libraries_pass(source):
    assert violations(textwrap.dedent(source)) == []


def test_bolts_listener_runner_is_left_alone():
    """Its start and completion handlers are public attributes but no documented hook: bot/slack/in_flight.py
    tracks listeners from their wrapper instead, and nothing in bot/ reaches into the runner."""
    touching = [str(path.relative_to(BOT)) for path in BOT.rglob("*.py") if "listener_runner" in path.read_text()]
    assert touching == []
