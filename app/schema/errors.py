"""Error formatting: domain errors get `extensions.code`, unexpected ones are masked and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError, GraphQLSyntaxError
from sqlalchemy import exc as sa_exc
from strawberry.extensions import SchemaExtension

from app.errors import AppError
from app.metrics import GRAPHQL_ERRORS
from app.security.faults import classify

logger = logging.getLogger("app.errors")

MASKED_MESSAGE = "Internal server error"


def format_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The error as the client sees it."""
    original = error.original_error
    if original is not None and not isinstance(original, AppError):
        mapped = classify(original)  # database outages, timeouts and unstorable text get their own codes
        if mapped is not None:
            error = GraphQLError(mapped.message, nodes=error.nodes, path=error.path, original_error=mapped)
        original = mapped or (None if error.path is None else original)  # no path: a variable coercion error
    if isinstance(original, AppError):
        code, extensions = original.code, original.extensions()
    elif original is None:
        code = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"
        extensions = {"code": code}
    else:
        log_unexpected(original, request_id)
        code = "INTERNAL_SERVER_ERROR"
        extensions = {"code": code, "requestId": request_id}
        GRAPHQL_ERRORS.labels(code).inc()
        return GraphQLError(MASKED_MESSAGE, nodes=error.nodes, path=error.path, extensions=extensions)
    GRAPHQL_ERRORS.labels(code).inc()
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original if isinstance(original, AppError) else None,
        extensions={**(error.extensions or {}), **extensions},
    )


def log_unexpected(error: BaseException, request_id: str | None) -> None:
    """Log an unexpected error; a database error is logged by kind, SQLSTATE and statement only, because
    driver messages quote row values (emails and other personal data) in their DETAIL."""
    if isinstance(error, sa_exc.DBAPIError):
        driver = error.orig if error.orig is not None else error
        state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
        statement = (error.statement or "")[:500]
        logger.error(
            "unexpected database error (request %s): %s sqlstate=%s statement=%s",
            request_id,
            type(driver).__name__,
            state,
            statement,
        )
        return
    logger.error("unexpected error (request %s)", request_id, exc_info=error)


class ErrorCodes(SchemaExtension):
    """Adds codes to every error and masks the unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not getattr(result, "errors", None):
            return
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        result.errors = [format_error(e, request_id) for e in result.errors or []]
