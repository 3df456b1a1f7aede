"""Exact SQL sums of Money columns on both backends."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal_column


class MoneySum:
    """SUM of a Money column, exact on both backends."""

    def __init__(self, dialect: str) -> None:
        # SQLite keeps NUMERIC as REAL: whole nano-dollars add up exactly where the floats would drift.
        self._nanos = dialect != "postgresql"

    def sum(self, column: ColumnElement) -> ColumnElement:
        """The SQL sum (0 for no rows)."""
        if self._nanos:
            column = cast(func.round(column * literal_column("1000000000")), BigInteger)
        return func.coalesce(func.sum(column), literal_column("0"))

    def usd(self, value: object) -> Decimal:
        """The sum as read back, in dollars."""
        if self._nanos:
            return Decimal(int(value)).scaleb(-9)
        return value if isinstance(value, Decimal) else Decimal(value)
