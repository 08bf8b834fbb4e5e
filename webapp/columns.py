"""String lengths taken from the columns that store them.

A schema that accepts more characters than its ``varchar(n)`` column turns a long string into a database error
(a 500) instead of a 422. ``ColumnLength(User.display_name)`` is ``validate.Length`` whose maximum is the
column's, so the limit lives once, in ``models/``; tests/webapp/test_inputs.py walks every input schema and
checks each string field against the columns it may be stored in.
"""

from __future__ import annotations

from typing import Any

from marshmallow import validate
from sqlalchemy import String
from sqlalchemy.orm import QueryableAttribute


def column_length(column: QueryableAttribute[Any]) -> int | None:
    """The ``n`` of a ``varchar(n)`` column, or None for an unbounded one (``text``)."""
    sql_type = column.property.columns[0].type
    return sql_type.length if isinstance(sql_type, String) else None


class ColumnLength(validate.Length):
    """``validate.Length`` up to the column's length (or a smaller ``max``: a rule of the API, not of storage)."""

    def __init__(self, column: QueryableAttribute[Any], min: int | None = None, max: int | None = None,
                 **kwargs: Any) -> None:
        length = column_length(column)
        if length is None and max is None:
            raise ValueError(f"{column} is unbounded: give a max")
        bound = min_of(max, length)
        super().__init__(min=min, max=bound, **kwargs)
        self.column = column


def min_of(*values: int | None) -> int:
    return min(v for v in values if v is not None)
