"""A per-process cache of parsed GraphQL documents that keeps the parser's limits and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cachetools import LRUCache
from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

PARSE_CACHE_SIZE = 1024

_documents: LRUCache[tuple[str, tuple[tuple[str, Any], ...]], DocumentNode] = LRUCache(maxsize=PARSE_CACHE_SIZE)


class ParsedDocuments(SchemaExtension):
    """Clients send the same few documents over and over: parse each once.

    A hit hands Strawberry the document so it skips parsing; a miss parses the normal way (under the token
    limit, with its syntax errors and status codes) and only a successful parse is kept. The key includes the
    parse options, so a document is never reused under a different token limit.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is None or context.graphql_document is not None:
            yield
            return
        key = (context.query, tuple(sorted(context.parse_options.items())))
        document = _documents.get(key)
        if document is not None:
            context.graphql_document = document
        yield
        if document is None and context.graphql_document is not None and not context.pre_execution_errors:
            _documents[key] = context.graphql_document
