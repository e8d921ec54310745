"""`column = ANY(:array)`: membership tests whose statement text does not depend on how many values there are."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute


def among(column: ColumnElement[Any] | QueryableAttribute[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY(:values)` with one array parameter of the column's type.

    `column.in_(values)` renders one cast parameter per value on asyncpg, so every list length is a new
    statement: compiled again by SQLAlchemy and prepared again by PostgreSQL (it showed in the serving
    profile). One array parameter keeps a single statement, compiled and prepared once."""
    return column == any_(bindparam("among", list(values), type_=ARRAY(column.type), unique=True))
