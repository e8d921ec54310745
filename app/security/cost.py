"""Static query cost: computed before execution, refused over the limit, charged by the rate limiter.

A field costs 1 when it has its own resolver (every resolver of this schema reads the database, an
index or the engine) and 0 when it is a plain attribute; a field with a `first` or `count` argument
multiplies the cost of its children by that number. So
`contents(first: 100) { edges { node { similar(count: 100) { content { id } } } } }` costs
1 + 100 * (1 + 100 * 1) = 10,101.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    parse,
)
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension

from app.errors import AppError

COUNT_ARGUMENTS = ("first", "count")
COSTS_KEY = "root_costs"  # Context.extra[COSTS_KEY]: response key of each root field -> its cost


class QueryTooComplex(AppError):
    """The operation's static cost is over the limit; nothing was executed."""

    code = "QUERY_TOO_COMPLEX"


class CostCalculator:
    """Walks one operation's selections (fragments included) and adds up field costs."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        resolved: frozenset[tuple[str, str]],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.inputs = variables
        self.variables: VariableValues | None = None
        self.resolved = resolved

    def root_costs(self, operation: OperationDefinitionNode) -> dict[str, int]:
        """The cost of each root field, by response key (alias or name)."""
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), dict(self.inputs))
        self.variables = coerced if isinstance(coerced, VariableValues) else None  # bad ones fail execution
        root = self.schema.get_root_type(operation.operation)
        assert root is not None
        costs: dict[str, int] = {}
        for parent, node in self._fields(root, operation.selection_set):
            key = node.alias.value if node.alias else node.name.value
            costs[key] = costs.get(key, 0) + max(1, self.field_cost(parent, node))
        return costs

    def field_cost(self, parent: GraphQLObjectType, node: FieldNode) -> int:
        """Own cost plus the children's cost times the field's page size."""
        name = node.name.value
        if name.startswith("__"):
            return 0
        definition = parent.fields[name]
        own = 1 if (parent.name, name) in self.resolved else 0
        if node.selection_set is None:
            return own
        child = get_named_type(definition.type)
        children = sum(self.field_cost(p, n) for p, n in self._fields(child, node.selection_set))
        return own + self._multiplier(definition, node) * children

    def _multiplier(self, definition: GraphQLField, node: FieldNode) -> int:
        if not any(a in definition.args for a in COUNT_ARGUMENTS):
            return 1
        try:
            values = get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return 1  # execution reports the bad argument itself
        for name in COUNT_ARGUMENTS:
            if isinstance(values.get(name), int):
                return max(1, int(values[name]))
        return 1

    def _fields(self, parent: Any, selection_set: SelectionSetNode) -> Iterator[tuple[GraphQLObjectType, FieldNode]]:
        """Every field node of a selection set, through inline fragments and fragment spreads."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield parent, selection
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                typed = self.schema.get_type(condition.name.value) if condition else parent
                yield from self._fields(typed, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                fragment = self.fragments[selection.name.value]
                typed = self.schema.get_type(fragment.type_condition.name.value)
                yield from self._fields(typed, fragment.selection_set)


def resolved_fields(strawberry_schema: Any) -> frozenset[tuple[str, str]]:
    """(type name, field name) of every field with its own resolver: these are the costly ones."""
    found: set[tuple[str, str]] = set()
    for name, graphql_type in strawberry_schema._schema.type_map.items():
        definition = getattr(graphql_type, "extensions", {}).get("strawberry-definition")
        for field in getattr(definition, "fields", None) or []:
            if getattr(field, "base_resolver", None) is not None:
                found.add((name, strawberry_schema.config.name_converter.get_graphql_name(field)))
    return frozenset(found)


def selected_operation(document: Any, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation the request runs (the only one, or the named one)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


class QueryCost(SchemaExtension):
    """Refuses an operation whose static cost is over `max_cost` before anything runs."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost
        self._resolved: frozenset[tuple[str, str]] | None = None

    def on_execute(self) -> Iterator[None]:
        """Compute the cost; over the limit the result is set and execution is skipped."""
        ctx = self.execution_context
        operation = selected_operation(ctx.graphql_document, ctx.operation_name) if ctx.graphql_document else None
        if operation is not None:
            costs = self._costs(operation)
            total = sum(costs.values())
            extra = getattr(ctx.context, "extra", None)
            if isinstance(extra, dict):
                extra[COSTS_KEY] = costs
            if total > self.max_cost:
                ctx.result = self._refusal(total)
        yield

    def _costs(self, operation: OperationDefinitionNode) -> dict[str, int]:
        ctx = self.execution_context
        assert ctx.graphql_document is not None
        if self._resolved is None:
            self._resolved = resolved_fields(ctx.schema)
        fragments = {d.name.value: d for d in ctx.graphql_document.definitions if isinstance(d, FragmentDefinitionNode)}
        calculator = CostCalculator(ctx.schema._schema, fragments, ctx.variables or {}, self._resolved)
        return calculator.root_costs(operation)

    def _refusal(self, cost: int) -> GraphQLExecutionResult:
        error = QueryTooComplex(
            f"query cost {cost} is over the limit of {self.max_cost}: ask for fewer items or less nesting",
            cost=cost,
            maxCost=self.max_cost,
        )
        return GraphQLExecutionResult(data=None, errors=[GraphQLError(error.message, original_error=error)])


def static_cost(
    strawberry_schema: Any, query: str, variables: Mapping[str, Any] | None = None, operation_name: str | None = None
) -> dict[str, int]:
    """The cost of each root field of a document (for tests, docs and tools; the server uses QueryCost)."""
    document = parse(query)
    operation = selected_operation(document, operation_name)
    if operation is None:
        raise ValueError("the document has no single operation to cost")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    calculator = CostCalculator(
        strawberry_schema._schema, fragments, variables or {}, resolved_fields(strawberry_schema)
    )
    return calculator.root_costs(operation)
