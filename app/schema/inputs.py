"""Flat input types built straight from graphql-core's coerced values.

Strawberry converts every argument value field by field through its generic type machinery
(`strawberry.types.arguments.convert_argument`): for `logEvents` with 1,000 events that was 48% of the
request's CPU (py-spy, SCALING.md). graphql-core has already validated and coerced each field, scalars
included, so an input type whose fields are all scalars needs nothing but its GraphQL names mapped to
Python ones. `flat_input` installs that mapping as the type's `from_input` hook, the one Strawberry
offers integrations for building input values (`StrawberryObjectDefinition.from_input`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.base import StrawberryOptional, get_object_definition

T = TypeVar("T")


def is_flat_scalar(annotation: object) -> bool:
    """A built-in scalar (str, ID, JSON, DateTime…) or a custom one, optional or not; not a list, an enum or
    a nested input. graphql-core hands their values over already parsed."""
    if isinstance(annotation, StrawberryOptional):
        annotation = annotation.of_type
    return annotation in DEFAULT_SCALAR_REGISTRY or hasattr(annotation, "_scalar_definition")


def flat_input(cls: type[T]) -> type[T]:
    """Build `cls` (a `@strawberry.input` whose fields are all scalars) from the coerced value in one call.

    Raises TypeError at import time for a field that is not a scalar: those need Strawberry's conversion.
    """
    definition = get_object_definition(cls, strict=True)
    if not definition.is_input:
        raise TypeError(f"{cls.__name__} is not a @strawberry.input type")
    for field in definition.fields:
        if not is_flat_scalar(field.type):
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar: flat_input cannot build it")
    definition.from_input = _builder(definition.fields)
    return cls


def _builder(fields: list[Any]) -> Callable[[type, Mapping[str, Any], Any], Any]:
    """`from_input`: map the GraphQL field names (resolved once, by the schema's name converter) to Python's."""
    names: dict[str, str] = {}

    def from_input(origin: type, value: Mapping[str, Any], context: Any) -> Any:
        if not names:
            names.update({context.config.name_converter.from_field(f): f.python_name for f in fields})
        return origin(**{names[key]: item for key, item in value.items()})

    return from_input
