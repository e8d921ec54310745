"""Shared GraphQL types: page info, batch results, JSON scalar."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.scalars import JSON

from app.services.content import BatchOutcome

__all__ = ["JSON", "BatchError", "BatchResult", "PageInfo"]

Cursor = NewType("Cursor", str)


@strawberry.type(description="Page information of a connection (the GraphQL Cursor Connections spec).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item; pass it as `after`.")
    has_previous_page: bool = strawberry.field(
        default=False, description="Whether items precede this page (true when it was asked for `after` a cursor)."
    )
    start_cursor: str | None = strawberry.field(default=None, description="Cursor of the first item of this page.")

    @classmethod
    def of(cls, cursors: list[str], *, has_next: bool, has_previous: bool) -> PageInfo:
        """Page information for a page whose edges have these cursors."""
        return cls(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


@strawberry.type(description="One rejected item of a batch.")
class BatchError:
    index: int = strawberry.field(description="Position of the rejected item in the input list (0-based).")
    message: str = strawberry.field(description="Why it was rejected, naming the field.")


@strawberry.type(description="Outcome of a batch write: valid items are stored even when others are rejected.")
class BatchResult:
    accepted: int = strawberry.field(description="Items stored by this call.")
    duplicates: int = strawberry.field(description="Items skipped because the same id was already stored.")
    errors: list[BatchError] = strawberry.field(description="Rejected items, by index.")

    @classmethod
    def from_outcome(cls, outcome: BatchOutcome) -> BatchResult:
        """Build from a service outcome."""
        errors = [BatchError(index=i, message=m) for i, m in outcome.errors]
        return cls(accepted=outcome.accepted, duplicates=outcome.duplicates, errors=errors)
