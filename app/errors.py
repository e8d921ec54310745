"""Domain errors and their GraphQL error codes."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error whose message is safe to show to the caller."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def extensions(self) -> dict[str, Any]:
        """The `extensions` object of the GraphQL error."""
        data: dict[str, Any] = {"code": self.code, **self.extra}
        if self.field is not None:
            data["field"] = self.field
        return data


class NotFound(AppError):
    """A requested record does not exist."""

    code = "NOT_FOUND"


class InvalidInput(AppError):
    """An argument breaks a rule; the message names the field."""

    code = "BAD_USER_INPUT"


class Conflict(AppError):
    """The write conflicts with existing data."""

    code = "CONFLICT"


class Forbidden(AppError):
    """The caller's role may not do this."""

    code = "FORBIDDEN"


class Unauthenticated(AppError):
    """No valid API key was given."""

    code = "UNAUTHENTICATED"


class ServiceUnavailable(AppError):
    """A dependency (the database) is unreachable; retry later."""

    code = "SERVICE_UNAVAILABLE"


class Timeout(AppError):
    """The request ran past its time budget."""

    code = "TIMEOUT"


class RateLimited(AppError):
    """The caller's rate budget is spent; retry after the hint."""

    code = "RATE_LIMITED"
