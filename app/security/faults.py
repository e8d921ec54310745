"""Map infrastructure failures (database down, pool exhausted, statement timeout) to domain errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

from app.errors import AppError, Conflict, InvalidInput, ServiceUnavailable, Timeout

QUERY_CANCELED = "57014"  # statement_timeout or a cancel request
UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300", "08000", "08001", "08003", "08004", "08006"}
UNAVAILABLE_MESSAGE = "the database is unavailable; retry shortly"
TIMEOUT_MESSAGE = "the request ran past its time budget"
UNSTORABLE_TEXT = {"22021", "22P05"}  # NUL bytes and other text PostgreSQL cannot store
UNSTORABLE_MESSAGE = "text may not contain NUL (\\u0000) characters"
RETRYABLE_STATES = {"40001", "40P01"}  # serialization failure, deadlock: the transaction may simply be retried
UNIQUE_VIOLATION = "23505"
CONFLICT_MESSAGE = "the write conflicted with a concurrent one; retry it"
DUPLICATE_MESSAGE = "a record with this id exists already"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, its wrapped driver errors and its causes (each once)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def _classify_one(error: BaseException) -> AppError | None:
    state = _sqlstate(error)
    if state == QUERY_CANCELED:
        return Timeout(TIMEOUT_MESSAGE)
    if state in UNSTORABLE_TEXT:
        return InvalidInput(UNSTORABLE_MESSAGE)
    if state in RETRYABLE_STATES:
        return Conflict(CONFLICT_MESSAGE, retryable=True)
    if state == UNIQUE_VIOLATION:
        return Conflict(DUPLICATE_MESSAGE)
    if state in UNAVAILABLE_STATES:
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    if isinstance(error, OSError | ConnectionError | asyncio.TimeoutError):
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    if type(error).__name__ in {"ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"}:
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    return None


def classify(error: BaseException) -> AppError | None:
    """The domain error an unexpected exception stands for, or None when it is a real bug."""
    for link in _chain(error):
        if isinstance(link, AppError):
            return link
        mapped = _classify_one(link)
        if mapped is not None:
            return mapped
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether a database error is a deadlock or serialization failure (retrying the transaction helps)."""
    return any(_sqlstate(link) in RETRYABLE_STATES for link in _chain(error))
