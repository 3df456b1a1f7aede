"""What every store raises when the database cannot be reached just now (and nothing was written)."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database is down, restarting or cut off; the operation did nothing and may be tried again later."""
