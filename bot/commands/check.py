"""`frugal check`: the configuration and every outside dependency, with the fix for each problem."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.catalog import Catalog, CatalogError, UnknownModelError, format_usd
from bot.config import DEFAULT_MODELS, ConfigError, Settings
from bot.ports.chat import RemoteModel
from bot.ports.model_status import UnavailableModel
from bot.ports.store import StoreUnavailable
from bot.services.lifecycle import (
    SHUTDOWN_WARNING_DAYS,
    ModelLifecycle,
    ModelLister,
    build_report,
    identify,
    list_remote_models,
    model_lifecycle,
    resolve_baseline,
)
from bot.slack.tokens import (
    ACCEPTED,
    APP_TOKEN_FIX,
    BOT_TOKEN_FIX,
    UNREACHABLE,
    TokenVerdict,
    app_token_verdict,
    bot_token_verdict,
)

# NOTE is information with nothing to fix; WARN works for now but needs an operator; FAIL is broken.
OK, NOTE, WARN, FAIL = "ok", "note", "WARN", "FAIL"
CHECK_TIMEOUT_S = 15.0
# Wide enough that nothing wraps when the report goes to a file or a pipe.
UNWRAPPED = 1000
_STYLES = {OK: "green", NOTE: "cyan", WARN: "yellow", FAIL: "bold red"}

_OPENAI_KEY_FIX = "set OPENAI_API_KEY to your OpenAI API key (or the key of the endpoint at OPENAI_BASE_URL)"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it went, and the fix when it did not."""

    subject: str
    status: str
    detail: str
    fix: str | None = None


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `frugal check`."""
    parser = commands.add_parser(
        "check", help="check the configuration, database, Slack token and each model; exit 0 when all is well"
    )
    parser.set_defaults(handler=check)


def check(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report; exit 0 only when all is well (nothing failed, nothing to act on)."""
    return asyncio.run(run_check(settings, sys.stdout))


async def run_check(settings: Settings, out: TextIO, *, lister: ModelLister | None = None) -> int:
    """Check everything, print the table and the fixes, and return the exit code (0: all is well)."""
    findings = await gather_findings(settings, lister=lister)
    print_report(findings, out)
    return 1 if any(f.status in (FAIL, WARN) for f in findings) else 0


async def gather_findings(settings: Settings, *, lister: ModelLister | None = None) -> list[Finding]:
    """Every finding, in the order the report shows them."""
    findings = _configuration(settings)
    database, marks = await _database(settings)
    findings.append(database)
    findings += await _slack(settings)
    try:
        catalog = Catalog.load(settings.catalog_file)
    except CatalogError as err:
        findings.append(Finding("model catalog", FAIL, str(err), "fix the FRUGAL_MODEL_CATALOG file"))
        return findings
    if settings.openai_api_key is None and lister is None:
        findings += _without_key(settings, catalog, marks)
        findings.append(_baseline(settings, catalog))
        return findings
    from bot.infra.openai_chat import OpenAIChatModel

    timeout = min(settings.model_timeout, CHECK_TIMEOUT_S)
    own = (
        OpenAIChatModel(api_key=settings.openai_api_key, base_url=settings.openai_base_url, timeout=timeout)
        if lister is None
        else None
    )
    try:
        findings += await _models(settings, catalog, lister or own, marks)
    finally:
        if own is not None:
            await own.close()
    findings.append(_baseline(settings, catalog))
    return findings


def render(findings: list[Finding], *, width: int = UNWRAPPED) -> str:
    """The findings as a table, then the fixes, then a one-line verdict, as plain text."""
    out = io.StringIO()
    _print(Console(file=out, width=width, highlight=False, no_color=True), findings)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def print_report(findings: list[Finding], file: TextIO) -> None:
    """Print the report: at the terminal's width and with coloured states on a terminal, unwrapped and plain elsewhere."""
    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        file.write(render(findings))
        return
    _print(console, findings)


def _print(console: Console, findings: list[Finding]) -> None:
    # No borders and two spaces between columns: each line reads "subject  state  detail", which
    # .ci/run parses; a detail wider than the terminal wraps inside its own column.
    grid = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    grid.add_column("CHECK", no_wrap=True)
    grid.add_column("STATUS", no_wrap=True)
    grid.add_column("DETAIL", overflow="fold")
    for f in findings:
        grid.add_row(f.subject, Text(f.status, style=_STYLES.get(f.status, "")), Text(f.detail))
    console.print(grid)
    fixes = [f for f in findings if f.fix]
    if fixes:
        console.print()
        console.print("How to fix:", markup=False)
        for f in fixes:
            console.print(f"  {f.subject}: {f.fix}", markup=False, highlight=False)
    failed = sum(f.status == FAIL for f in findings)
    warned = sum(f.status == WARN for f in findings)
    console.print()
    if failed or warned:
        console.print(f"{failed} problem(s), {warned} warning(s).", markup=False)
    else:
        console.print("All is well.", markup=False)


def _configuration(settings: Settings) -> list[Finding]:
    socket_mode = bool(settings.slack_app_token)
    problems = settings.serving_problems(socket_mode=socket_mode)
    if problems:
        findings = []
        for line in problems:
            # Each line is "VARIABLE: what is wrong; the fix".
            variable, _, rest = line.partition(": ")
            problem, _, fix = rest.partition("; ")
            findings.append(Finding("configuration", FAIL, f"{variable}: {problem}", fix or f"set {variable}"))
        return findings
    mode = "Socket Mode" if socket_mode else "HTTP"
    workspaces = "multi-workspace OAuth" if settings.oauth_enabled else "single workspace"
    return [Finding("configuration", OK, f"{mode}, {workspaces}")]


async def _database(settings: Settings) -> tuple[Finding, list[UnavailableModel] | None]:
    from bot.infra.db.health import database_location, database_state

    location = database_location(settings.database_url)
    where = location.shown
    if location.sqlite_file is not None:
        # Connecting to SQLite creates the file: a check must leave no empty database behind.
        path = location.sqlite_file
        if not path.parent.is_dir():
            return Finding(
                "database",
                FAIL,
                f"{where}: cannot connect (no folder {path.parent})",
                "check DATABASE_URL: its folder must exist",
            ), None
        if not path.is_file():
            finding = Finding(
                "database",
                WARN,
                f"{where}: no database yet",
                "run `frugal migrate` to create it (`frugal run` also does)",
            )
            return finding, None
    try:
        state = await database_state(settings.database_url, timeout=CHECK_TIMEOUT_S)
    except StoreUnavailable as err:
        return Finding(
            "database",
            FAIL,
            # Named after the driver's error (or TimeoutError), which is what an operator can look up.
            f"{where}: cannot connect ({err.cause_name})",
            "check DATABASE_URL and that the database server is up",
        ), None
    if state.pending:
        finding = Finding(
            "database",
            WARN,
            f"{where}: {len(state.pending)} migration(s) pending",
            "run `frugal migrate` (`frugal run` also applies them)",
        )
        return finding, None
    return Finding("database", OK, f"{where}: reachable, migrations applied"), state.unavailable_models


async def _slack(settings: Settings) -> list[Finding]:
    timeout = int(CHECK_TIMEOUT_S)
    if settings.slack_bot_token is None:
        if settings.oauth_enabled:
            findings = [Finding("slack", OK, "OAuth mode: each workspace's token comes from its installation")]
        else:
            findings = [Finding("slack", FAIL, "SLACK_BOT_TOKEN is not set", BOT_TOKEN_FIX)]
    else:
        verdict = await bot_token_verdict(settings.slack_bot_token, settings.slack_api_url, timeout=timeout)
        findings = [_token_finding("slack", verdict, BOT_TOKEN_FIX)]
    if settings.slack_app_token is not None:
        verdict = await app_token_verdict(settings.slack_app_token, settings.slack_api_url, timeout=timeout)
        findings.append(_token_finding("slack app token", verdict, APP_TOKEN_FIX))
    return findings


def _token_finding(subject: str, verdict: TokenVerdict, fix: str) -> Finding:
    if verdict.outcome == ACCEPTED:
        return Finding(subject, OK, verdict.detail)
    if verdict.outcome == UNREACHABLE:
        return Finding(subject, FAIL, verdict.detail, "check SLACK_API_URL and the network")
    return Finding(subject, FAIL, verdict.detail, fix)


def _without_key(settings: Settings, catalog: Catalog, marks: list[UnavailableModel] | None) -> list[Finding]:
    """No key: the endpoint is not asked (it would only refuse), each model is checked against the catalog."""
    findings = [Finding("openai", FAIL, "OPENAI_API_KEY is not set; the endpoint was not asked", _OPENAI_KEY_FIX)]
    unavailable = {mark.model: mark for mark in marks or ()}
    today = datetime.now(timezone.utc).date()
    for position, name in enumerate(settings.models):
        role = "primary" if position == 0 else f"fallback {position}"
        findings.append(_model(f"model {name} ({role})", name, settings, catalog, None, unavailable, today))
    return findings


async def _models(
    settings: Settings, catalog: Catalog, lister: ModelLister, marks: list[UnavailableModel] | None
) -> list[Finding]:
    endpoint = settings.openai_base_url or "OpenAI"
    listing = await list_remote_models(lister)
    remote, problem, refused = listing.models, listing.problem, listing.refused
    if refused is not None and refused.status == 401:
        findings = [
            Finding("openai", FAIL, f"{endpoint} refused OPENAI_API_KEY (HTTP 401)", "set a valid OPENAI_API_KEY")
        ]
    elif listing.unreachable:
        findings = [
            Finding(
                "openai",
                FAIL,
                f"{endpoint}: {problem}",
                "check OPENAI_BASE_URL and the network (`frugal run` still starts)",
            )
        ]
    elif problem is not None:
        # Some compatible servers have no /v1/models: nothing to fix, but nothing to check against either.
        findings = [
            Finding("openai", NOTE, f"{endpoint}: {problem}; models are not checked against it, shutdown dates unknown")
        ]
    else:
        findings = [Finding("openai", OK, f"{endpoint} lists {len(remote)} models")]
    by_id = {m.id: m for m in remote} if remote is not None else None
    unavailable = {mark.model: mark for mark in marks or ()}
    today = datetime.now(timezone.utc).date()
    for position, name in enumerate(settings.models):
        role = "primary" if position == 0 else f"fallback {position}"
        findings.append(_model(f"model {name} ({role})", name, settings, catalog, by_id, unavailable, today))
    return findings


def _model(
    subject: str,
    name: str,
    settings: Settings,
    catalog: Catalog,
    remote: dict[str, RemoteModel] | None,
    unavailable: dict[str, UnavailableModel],
    today: date,
) -> Finding:
    try:
        identify(name, catalog, list(remote) if remote is not None else None)
    except UnknownModelError as err:
        if err.suggestion:
            fixed = ",".join(err.suggestion if m == name else m for m in settings.models)
            return Finding(subject, FAIL, str(err), f"set FRUGAL_MODELS={fixed}")
        return Finding(
            subject, FAIL, f"{err}: not in the catalog and not offered by the endpoint", "replace it in FRUGAL_MODELS"
        )
    model = model_lifecycle(name, catalog, remote, today)
    detail = _detail(model, today)
    days = model.days_left(today)
    mark = unavailable.get(model.model)
    if model.retired is not None:
        replacement = f"; OpenAI's replacement is {model.replacement}" if model.replacement else ""
        detail = f"retired: it {model.retired.why}, so Frugal skips it without a call{replacement} · {detail}"
        if _is_default_chain(settings) and name == settings.models[0]:
            # The default chain starts with the mission's model wherever an endpoint still serves it.
            return Finding(subject, NOTE, f"{detail} · the default chain goes on to its successors")
        fix = build_report(
            settings.models, catalog, list(remote.values()) if remote is not None else None, None, _now()
        ).fixed_chain()
        return Finding(subject, FAIL, detail, f"set FRUGAL_MODELS={fix}" if fix else "replace it in FRUGAL_MODELS")
    if mark is not None:
        return Finding(
            subject,
            WARN,
            f"marked unavailable ({mark.reason}) until {mark.retry_at:%Y-%m-%d %H:%M} UTC · {detail}",
            "replace it in FRUGAL_MODELS, or wait: Frugal tries it again then",
        )
    if days is not None and days <= SHUTDOWN_WARNING_DAYS:
        instead = f" (OpenAI's replacement: {model.replacement})" if model.replacement else ""
        return Finding(
            subject, WARN, detail, f"replace it in FRUGAL_MODELS{instead} before {model.shutdown_date:%Y-%m-%d}"
        )
    if model.price is None:
        return Finding(
            subject, WARN, detail, 'add its price to the FRUGAL_MODEL_CATALOG file, or costs show as "price unknown"'
        )
    return Finding(subject, OK, detail)


def _detail(model: ModelLifecycle, today: date) -> str:
    listed = {True: "listed", False: "not listed", None: "listing unknown"}[model.listed]
    days = model.days_left(today)
    if model.shutdown_date is None:
        shutdown = "no shutdown date announced"
    elif days is not None and days <= 0:
        shutdown = f"shut down on {model.shutdown_date:%Y-%m-%d}"
    else:
        shutdown = f"shuts down {model.shutdown_date:%Y-%m-%d} (in {days} days)"
    alias = f"'{model.configured_as}' is {model.model} · " if model.configured_as != model.model else ""
    if model.price is None:
        price = "price unknown"
    else:
        price = f"{format_usd(model.price.input)} in / {format_usd(model.price.output)} out per 1M tokens ({model.price_source})"
    return f"{alias}{listed} · {shutdown} · {price}"


def _is_default_chain(settings: Settings) -> bool:
    return settings.models == tuple(DEFAULT_MODELS.split(","))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _baseline(settings: Settings, catalog: Catalog) -> Finding:
    try:
        baseline = resolve_baseline(catalog, settings.baseline_model)
    except ConfigError as err:
        return Finding("baseline model", FAIL, str(err), "set FRUGAL_BASELINE_MODEL to a catalog model, e.g. gpt-4o")
    return Finding("baseline model", OK, f"{baseline}: savings are measured against it")
