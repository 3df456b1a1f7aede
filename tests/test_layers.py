"""One layer per job: the walk reads bot/ with ast and refuses an import that crosses the layers the wrong way.

- sqlalchemy and alembic only in bot/infra/, bot/migrations/ and the composition root (bot/composition.py):
  everyone else sees the database through the ports, and StoreUnavailable (bot/ports/store.py) when it is away;
- bot/ports and bot/infra import nothing of bot/services or bot/slack: the services depend on the ports,
  the infrastructure implements them, never the other way round.

Every import counts, those inside a function too (the commands import the infrastructure lazily).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"

DATABASE_LIBRARIES = ("sqlalchemy", "alembic")
DATABASE_ALLOWED = ("bot/infra/", "bot/migrations/", "bot/composition.py")
LOWER_LAYERS = ("bot/ports/", "bot/infra/")
UPPER_LAYERS = ("bot.services", "bot.slack")


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, the source of the module named `module`."""
    found = []
    package = module.split(".") if module.endswith(".__init__") else module.split(".")[:-1]
    package = [part for part in package if part != "__init__"]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from . import x` / `from ..y import z`: relative to the module's package.
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from bot import services` imports bot.services, `from bot.slack import x` imports bot.slack.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            found.append((node.lineno, target))
    return found


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def layer_violations(path: str, source: str) -> list[str]:
    """What the module at `path` (relative to the repository, e.g. bot/scheduler.py) imports across the layers."""
    module = path.removesuffix(".py").replace("/", ".")
    found = set()
    for line, name in imported_modules(source, module):
        if _within(name, DATABASE_LIBRARIES) and not path.startswith(DATABASE_ALLOWED):
            found.add(f"{path}:{line} imports {name.split('.')[0]}")
        if _within(name, UPPER_LAYERS) and path.startswith(LOWER_LAYERS):
            found.add(f"{path}:{line} imports {'.'.join(name.split('.')[:2])}")
    return sorted(found)


def test_no_module_of_bot_imports_across_its_layer():
    sources = sorted(BOT.rglob("*.py"))
    assert len(sources) > 50, "the walk found bot/"
    found = [v for p in sources for v in layer_violations(p.relative_to(ROOT).as_posix(), p.read_text())]

    assert found == []


@pytest.mark.parametrize(
    ("path", "source"),
    [
        # What the scheduler, the CLI, the check and the web server did before StoreUnavailable.
        ("bot/scheduler.py", "from sqlalchemy.exc import SQLAlchemyError\n"),
        ("bot/cli.py", "from sqlalchemy.exc import DBAPIError, OperationalError\n"),
        ("bot/commands/check.py", "def _database():\n    from sqlalchemy.engine import make_url\n"),
        ("bot/web/server.py", "import sqlalchemy.ext.asyncio\n"),
        ("bot/services/digest.py", "from alembic import command\n"),
        # What the digest store did before its port.
        ("bot/infra/db/digest_store.py", "from bot.services.digest import DueDigest, Frequency\n"),
        ("bot/infra/db/x.py", "from bot import services\n"),
        ("bot/ports/x.py", "import bot.slack.blocks\n"),
        ("bot/infra/db/x.py", "from ...slack import deps\n"),
    ],
)
def test_an_import_across_the_layers_is_found(path, source):
    assert layer_violations(path, source)


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "bot/infra/db/digest_store.py",
            "from sqlalchemy import select\nfrom bot.ports.digest_store import Frequency\n",
        ),
        ("bot/migrations/env.py", "from alembic import context\n"),
        ("bot/composition.py", "from sqlalchemy.ext.asyncio import AsyncEngine\nfrom bot.services.digest import X\n"),
        ("bot/services/digest.py", "from bot.ports.digest_store import DigestStore\n"),
        ("bot/slack/deps.py", "from bot.services.digest import DigestService\n"),
        ("bot/infra/db/x.py", "from .engine import unavailable_as\n"),
        ("bot/scheduler.py", "import sqlalchemy_utils_lookalike\n"),
    ],
)
def test_an_import_along_the_layers_is_allowed(path, source):
    assert layer_violations(path, source) == []
