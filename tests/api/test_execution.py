"""The leaf short path (`app.schema.execution.LeafFastPath`) answers exactly as graphql-core's executor.

Both executors run the same documents over the same sources; data, errors and error paths must be equal,
including for values the short path must refuse (nulls in non-null fields, values a scalar rejects,
attributes that raise, awaitables, exceptions returned as values).
"""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.schema.execution import LeafFastPath, plain_leaf
from app.schema.schema import build_schema


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Row:
    text: str
    number: int
    real: float
    flag: bool
    colour: Colour
    key: strawberry.ID
    maybe_text: str | None
    maybe_number: int | None
    maybe_colour: Colour | None
    children: list[Row]

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return str(self.text).upper() * times


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[Row]:
        return ROWS

    @strawberry.field
    def maybe_rows(self) -> list[Row | None] | None:
        return ROWS  # type: ignore[return-value]


ROWS: list[Any] = []
DOCUMENT = """{
  rows { text number real flag colour key maybeText maybeNumber maybeColour __typename
         children { text maybeNumber } }
  maybeRows { maybeText text number colour }
}"""
SCHEMAS = {
    cls: strawberry.Schema(query=Query, execution_context_class=cls)
    for cls in (StrawberryGraphQLCoreExecutionContext, LeafFastPath)
}


class Source:
    """A row whose attributes are whatever hypothesis draws (Strawberry's basic resolvers only getattr)."""

    def __init__(self, values: dict[str, Any], children: list[Any]) -> None:
        self.__dict__.update(values)
        self.children = children


class Raising:
    """A row whose every attribute read raises."""

    children: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # e.g. `__await__`, probed by the executors on every value
            raise AttributeError(name)
        raise RuntimeError(f"cannot read {name}")


async def _pending() -> str:
    return "later"


ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.integers(min_value=-(2**40), max_value=2**40),  # Int refuses past 32 bits
    st.floats(allow_nan=True, allow_infinity=True),  # Float refuses nan and infinities
    st.booleans(),
    st.sampled_from(list(Colour)),
    st.sampled_from(["red", "RED", "green"]),
    st.just(ValueError("returned, not raised")),
    st.just(object()),
    st.just([1, 2]),
)
FIELDS = ["text", "number", "real", "flag", "colour", "key", "maybe_text", "maybe_number", "maybe_colour"]
ROW = st.fixed_dictionaries({name: ANY_VALUE for name in FIELDS})


async def _both() -> list[tuple[Any, list[tuple[str, Any]]]]:
    out = []
    for schema in SCHEMAS.values():
        result = await schema.execute(DOCUMENT)
        errors = sorted((e.message, e.path) for e in result.errors or [])
        out.append((result.data, errors))
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, with nan equal to nan (a float field never yields nan, but compare safely)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(ROW, st.lists(ROW, max_size=2)), max_size=3))
async def test_same_answers_as_graphql_core(rows: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    ROWS[:] = [Source(values, [Source(child, []) for child in children]) for values, children in rows]
    (plain_data, plain_errors), (fast_data, fast_errors) = await _both()
    assert _same(plain_data, fast_data)
    assert plain_errors == fast_errors


async def test_refusals_are_reported_by_graphql_core() -> None:
    valid = {"text": "a", "number": 1, "real": 1.5, "flag": True, "colour": Colour.RED, "key": "k"}
    nullable = {"maybe_text": None, "maybe_number": None, "maybe_colour": None}
    bad = [
        Source({**valid, **nullable, "number": 2**40}, []),  # Int refuses
        Source({**valid, **nullable, "text": None}, []),  # null in a non-null field
        Source({**valid, **nullable, "real": float("nan")}, []),
        Source({**valid, **nullable, "colour": "green"}, []),  # not a member
        Raising(),
    ]
    for row in bad:
        ROWS[:] = [row]
        (plain_data, plain_errors), (fast_data, fast_errors) = await _both()
        assert _same(plain_data, fast_data)
        assert plain_errors == fast_errors
        assert fast_errors, "each refusal above is an error"
        assert all(path[:2] in (["rows", 0], ["maybeRows", 0]) for _, path in fast_errors), fast_errors


async def test_an_awaitable_attribute_is_awaited_by_graphql_core() -> None:
    valid = {"text": "a", "number": 1, "real": 1.5, "flag": True, "colour": Colour.RED, "key": "k"}
    ROWS[:] = [Source({**valid, "maybe_text": _pending(), "maybe_number": 3, "maybe_colour": None}, [])]
    result = await SCHEMAS[LeafFastPath].execute("{ rows { maybeText maybeNumber maybeColour } }")
    assert result.errors is None
    assert result.data == {"rows": [{"maybeText": "later", "maybeNumber": 3, "maybeColour": None}]}


def test_only_basic_leaf_fields_take_the_short_path() -> None:
    fields = SCHEMAS[LeafFastPath]._schema.type_map["Row"].fields  # type: ignore[union-attr]
    assert plain_leaf(fields["text"]) is not None and plain_leaf(fields["text"]).non_null  # type: ignore[union-attr]
    assert plain_leaf(fields["maybeText"]) is not None and not plain_leaf(fields["maybeText"]).non_null  # type: ignore[union-attr]
    assert plain_leaf(fields["colour"]) is not None
    assert plain_leaf(fields["children"]) is None  # not a leaf
    assert plain_leaf(fields["shout"]) is None  # a resolver with arguments


def test_the_service_schema_executes_with_the_short_path() -> None:
    assert build_schema().execution_context_class is LeafFastPath


@pytest.mark.parametrize("cls", list(SCHEMAS))
async def test_arguments_and_meta_fields_still_resolve(cls: type) -> None:
    ROWS[:] = [Source({"text": "ab"}, [])]
    result = await SCHEMAS[cls].execute("{ rows { shout(times: 2) __typename } }")
    assert result.errors is None
    assert result.data == {"rows": [{"shout": "ABAB", "__typename": "Row"}]}
