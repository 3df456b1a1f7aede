"""Fuzz fixtures: one running Frugal per test function, and a watch on its error handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# Where an exception no listener handled ends up: Frugal's Bolt error handler, and Bolt's own logger.
ERROR_LOGGERS = ("bot.slack.app", "frugal.bolt")


class ErrorWatch(logging.Handler):
    """Collects ERROR records from the loggers unhandled listener exceptions go to."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        """The errors logged since the last take, as 'logger: message (exception type)'."""
        seen = [
            f"{r.name}: {r.getMessage()} ({r.exc_info[0].__name__ if r.exc_info and r.exc_info[0] else '-'})"
            for r in self.records
        ]
        self.records.clear()
        return seen


@pytest.fixture
async def frugal_admin(start_frugal, migrated_url):
    """A running Frugal on a migrated database whose test user U0001 is a Frugal admin."""
    return await start_frugal(migrated_url, FRUGAL_ADMINS="U0001")


@pytest.fixture
def error_watch() -> Iterator[ErrorWatch]:
    """Every unhandled listener error logged while the test runs."""
    watch = ErrorWatch()
    loggers = [logging.getLogger(name) for name in ERROR_LOGGERS]
    for logger in loggers:
        logger.addHandler(watch)
    yield watch
    for logger in loggers:
        logger.removeHandler(watch)
