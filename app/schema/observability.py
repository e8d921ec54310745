"""Per-operation request counts and latency for Prometheus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cache

from graphql import FieldNode, GraphQLSchema, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from app.metrics import GRAPHQL_LATENCY, GRAPHQL_REQUESTS


class OperationMetrics(SchemaExtension):
    """Counts and times each operation, labelled by its first root field (bounded cardinality)."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        name = self._root_field()
        result = self.execution_context.result
        status = "error" if result is None or getattr(result, "errors", None) else "ok"
        GRAPHQL_REQUESTS.labels(name, status).inc()
        GRAPHQL_LATENCY.labels(name).observe(time.perf_counter() - started)

    def _root_field(self) -> str:
        document = self.execution_context.graphql_document
        known = root_fields(self.execution_context.schema._schema)
        if document is None:
            return "invalid"
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                for selection in definition.selection_set.selections:
                    if isinstance(selection, FieldNode):
                        return selection.name.value if selection.name.value in known else "invalid"
        return "unknown"


@cache
def root_fields(schema: GraphQLSchema) -> frozenset[str]:
    """The names a root field may have (label values of the metrics), computed once per schema."""
    roots = (schema.query_type, schema.mutation_type)
    return frozenset({name for root in roots if root is not None for name in root.fields} | {"__schema", "__type"})
