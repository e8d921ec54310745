"""graphql-core's execution with a short path for plain leaf fields.

Most fields of a result are Strawberry "basic" fields: an attribute read (no resolver, no arguments, no
field extension) returning a scalar or an enum, e.g. each recommended item's `contentId`, `score`, `rank`
and its reasons' `kind` and `weight`. For each of them graphql-core builds a resolve info object (which the
basic resolver ignores), checks twice whether the value is awaitable and walks `complete_value`'s chain of
type tests before coercing the value: on a cached recommendations answer, that per-field work is most of the
server's CPU (issue 11's profiles). `LeafFastPath.execute_field` reads such a field and coerces it at once.

Anything else goes through graphql-core's own `execute_field`: other fields, and every leaf whose value the
short path does not take as it is (null for a non-null field, an awaitable, an exception, a value the scalar
refuses), so errors, their paths and null propagation stay graphql-core's. A basic resolver only reads an
attribute, so reading it again there is safe. `tests/api/test_execution.py` compares both executors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLObjectType,
    GraphQLScalarType,
    get_nullable_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

REFUSED: Any = object()  # the short path's answer when graphql-core must complete the field


@dataclass(frozen=True, slots=True)
class PlainLeaf:
    """A basic field returning a scalar or an enum: its attribute read, its type's coercion, its nullability."""

    resolve: Callable[..., Any]
    coerce: Callable[[Any], Any]
    non_null: bool

    def complete(self, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
        """The completed value, or REFUSED for graphql-core to complete (and report) it."""
        try:
            value = self.resolve(source, None)
        except Exception:
            return REFUSED
        if value is None:
            return REFUSED if self.non_null else None
        if value is Undefined or isinstance(value, Exception) or is_awaitable(value):
            return REFUSED
        try:
            coerced = self.coerce(value)
        except Exception:
            return REFUSED
        return REFUSED if coerced is None or coerced is Undefined else coerced


def plain_leaf(field: GraphQLField) -> PlainLeaf | None:
    """The field as a `PlainLeaf` when it is a Strawberry basic field of a leaf type, else None."""
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None
    inner = get_nullable_type(field.type)
    if not isinstance(inner, GraphQLScalarType | GraphQLEnumType):  # a leaf type
        return None
    return PlainLeaf(resolve, inner.coerce_output_value, is_non_null_type(field.type))


# per object type (of the few schemas a process builds), its fields' PlainLeaf or None, filled on first use; a
# plain dict: a WeakKeyDictionary's lookup makes a weak reference per call (0.8% of a cached request's samples)
_LEAVES: dict[GraphQLObjectType, dict[str, PlainLeaf | None]] = {}


def _leaf(parent_type: GraphQLObjectType, name: str) -> PlainLeaf | None:
    fields = _LEAVES.get(parent_type)
    if fields is None:
        fields = _LEAVES[parent_type] = {}
    if name not in fields:
        field = parent_type.fields.get(name)  # None for meta fields such as __typename
        fields[name] = plain_leaf(field) if field is not None else None
    return fields[name]


class LeafFastPath(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context; basic leaf fields skip the generic completion (see the module)."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A basic leaf field's coerced value, else graphql-core's `execute_field`."""
        middleware = self.middleware_manager
        if middleware is None or not middleware.middlewares:  # no extension wraps the resolvers
            node = field_details_list[0].node
            leaf = _leaf(parent_type, node.name.value)
            if leaf is not None:
                value = leaf.complete(source, self.is_awaitable)
                if value is not REFUSED:
                    return value
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
