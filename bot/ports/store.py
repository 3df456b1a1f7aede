"""What every store raises when the database cannot be reached just now (and nothing was written)."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database is down, restarting or cut off; the operation did nothing and may be tried again later."""

    @property
    def cause_name(self) -> str:
        """The name of the driver's error the store saw (e.g. ConnectionRefusedError), for logs and operators."""
        return type(self.__cause__ or self).__name__
