"""`flat_input`: scalar-only input types built from graphql-core's values, the same as Strawberry builds them."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.arguments import convert_argument

from app.schema.events import EventInput
from app.schema.inputs import flat_input

CONFIG = StrawberryConfig()
text = st.text(max_size=8)
values = st.fixed_dictionaries(
    {"contentId": text, "eventType": text},
    optional={
        "userId": st.none() | text,
        "eventId": st.none() | text,
        "value": st.none() | st.floats(allow_nan=False),
        "timestamp": st.none() | st.datetimes(timezones=st.just(UTC)),
        "metadata": st.none() | st.dictionaries(text, st.integers() | text, max_size=3),
        "sessionId": st.none() | text,
        "deviceType": st.none() | text,
    },
)


def build(value: dict[str, Any], *, generic: bool) -> dict[str, Any]:
    """EventInput from a coerced value: through flat_input's hook, or Strawberry's own conversion."""
    definition = EventInput.__strawberry_definition__
    hook = definition.from_input
    if generic:
        definition.from_input = None
    try:
        return vars(convert_argument(value, EventInput, DEFAULT_SCALAR_REGISTRY, CONFIG))
    finally:
        definition.from_input = hook


@settings(max_examples=200, deadline=None)
@given(values)
def test_flat_input_builds_what_strawberry_builds(value: dict[str, Any]) -> None:
    assert build(value, generic=False) == build(value, generic=True)


def test_event_input_is_flat() -> None:
    built = convert_argument(
        {"contentId": "c1", "eventType": "view", "userId": "u1", "deviceType": "tv"},
        EventInput,
        DEFAULT_SCALAR_REGISTRY,
        CONFIG,
    )
    assert isinstance(built, EventInput)
    assert built.to_dict() == {"content_id": "c1", "event_type": "view", "user_id": "u1", "device_type": "tv"}


def test_flat_input_refuses_a_field_that_is_not_a_scalar() -> None:
    with pytest.raises(TypeError, match=r"Nested\.tags is not a scalar"):

        @flat_input
        @strawberry.input
        class Nested:
            tags: list[str]


def test_flat_input_refuses_an_output_type() -> None:
    with pytest.raises(TypeError, match=r"not a @strawberry\.input"):

        @flat_input
        @strawberry.type
        class Output:
            name: str
