"""GraphQL types for behavior events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.types import Info

from app.context import Context
from app.models import Event as EventModel
from app.repositories.pagination import encode_cursor
from app.schema.common import JSON, PageInfo
from app.schema.inputs import flat_input
from app.services.content import Page
from app.services.sessions import is_guest

if TYPE_CHECKING:
    from app.schema.content import Content
    from app.schema.users import User


@strawberry.type(description="A behavior event: a user did something with a content item.")
class Event:
    id: strawberry.ID = strawberry.field(description="Event id (UUID); a client-supplied id makes logging idempotent.")
    user_id: strawberry.ID | None = strawberry.field(description="Who acted; null for an anonymous session's event.")
    content_id: strawberry.ID = strawberry.field(description="The content acted on.")
    event_type: str = strawberry.field(description="What happened (view, click, like, rate, …; see `eventTypes`).")
    value: float | None = strawberry.field(description="Optional value: a rating, a watch fraction, an amount.")
    timestamp: datetime = strawberry.field(description="When it happened (ISO 8601, UTC).")
    session_id: str | None = strawberry.field(description="Client session id.")
    device_type: str | None = strawberry.field(description="Device kind, e.g. mobile or desktop.")
    platform: str | None = strawberry.field(description="Platform, e.g. ios, android, web.")
    metadata: JSON = strawberry.field(description="Free-form JSON attributes.")
    recommendation_id: strawberry.ID | None = strawberry.field(
        description="The `requestId` of the recommendation list this event came from, when attributed."
    )

    @strawberry.field(description="The content item (batched through a DataLoader).")
    async def content(
        self, info: Info[Context, None]
    ) -> Annotated[Content, strawberry.lazy("app.schema.content")] | None:
        return await info.context.loaders.content_node.load(str(self.content_id))

    @strawberry.field(description="The user (batched through a DataLoader).")
    async def user(self, info: Info[Context, None]) -> Annotated[User, strawberry.lazy("app.schema.users")] | None:
        if self.user_id is None:
            return None
        return await info.context.loaders.user_node.load(str(self.user_id))

    @classmethod
    def from_model(cls, row: EventModel) -> Event:
        """Build from an ORM row."""
        return cls(
            id=strawberry.ID(str(row.event_id)),
            user_id=None if is_guest(row.user_id) else strawberry.ID(row.user_id),
            content_id=strawberry.ID(row.content_id),
            event_type=row.event_type,
            value=row.value,
            timestamp=row.timestamp,
            session_id=row.session_id,
            device_type=row.device_type,
            platform=row.platform,
            metadata=cast(JSON, row.metadata_),
            recommendation_id=strawberry.ID(row.recommendation_id) if row.recommendation_id else None,
        )


@strawberry.type(description="An event with its cursor.")
class EventEdge:
    cursor: str = strawberry.field(description="Opaque cursor of this event.")
    node: Event = strawberry.field(description="The event.")


@strawberry.type(description="A page of events, newest first.")
class EventConnection:
    edges: list[EventEdge] = strawberry.field(description="Events of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(description="Events of this user in all.")

    @classmethod
    def from_page(cls, page: Page) -> EventConnection:
        """Build from a service page of ORM events."""
        edges = [EventEdge(cursor=event_cursor(e), node=Event.from_model(e)) for e in page.items]
        info = PageInfo.of([e.cursor for e in edges], has_next=page.has_next, has_previous=page.has_previous)
        return cls(edges=edges, page_info=info, total_count=page.total)


def event_cursor(row: EventModel) -> str:
    """The opaque keyset cursor of an event."""
    return encode_cursor(row.timestamp.isoformat(), str(row.event_id))


@strawberry.type(description="Result of `logEvent`.")
class LogEventResult:
    event: Event = strawberry.field(description="The stored event (the earlier one when this was a duplicate).")
    duplicate: bool = strawberry.field(description="True when an event with this id was already stored.")


@strawberry.type(description="Training weight of an event type.")
class EventTypeWeight:
    event_type: str = strawberry.field(description="Event type name.")
    weight: float = strawberry.field(description="Weight in training; negative marks an exclusion (dislike).")
    conversion: bool = strawberry.field(
        description="Whether an attributed event of this type counts as a conversion in `recommendationStats`."
    )

    @strawberry.field(description="The event type name again, as the id a normalized client cache keys it by.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.event_type)


@flat_input
@strawberry.input(description="A behavior event to log.")
class EventInput:
    content_id: strawberry.ID = strawberry.field(description="The content acted on; must exist.")
    event_type: str = strawberry.field(description="One of the configured event types (see `eventTypes`).")
    user_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Who acted; an unknown user gets a minimal profile. Optional when `sessionId` is given "
        "(an anonymous visitor): one of the two is required.",
    )
    recommendation_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The `requestId` of the recommendation list the item was shown in: attributes the event "
        "to that list's strategy and experiment arm.",
    )
    event_id: strawberry.ID | None = strawberry.field(
        default=None, description="Optional idempotency key (a UUID): the same id twice stores one event."
    )
    value: float | None = strawberry.field(default=None, description="Rating, watch fraction or amount.")
    timestamp: datetime | None = strawberry.field(default=None, description="When it happened; defaults to now.")
    session_id: str | None = strawberry.field(default=None, description="Client session id.")
    device_type: str | None = strawberry.field(default=None, description="Device kind.")
    platform: str | None = strawberry.field(default=None, description="Platform.")
    metadata: JSON | None = strawberry.field(default=None, description="Free-form JSON attributes.")

    def to_dict(self) -> dict[str, object]:
        """Plain values for the service layer."""
        data = {k: v for k, v in vars(self).items() if v is not None}
        return {**data, "content_id": str(self.content_id)}
