"""Resolvers for event queries and mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.common import BatchResult
from app.schema.events import Event, EventConnection, EventInput, EventTypeWeight, LogEventResult
from app.services import events as service
from app.services.users import invalidate_user


async def events(
    info: Info[Context, None],
    user_id: Annotated[strawberry.ID, strawberry.argument(description="Whose events.")],
    first: Annotated[int, strawberry.argument(description="Page size (1-100).")] = 20,
    after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
) -> EventConnection:
    """A user's events, newest first."""
    async with info.context.session() as session:
        page = await service.list_events(
            session, user_id=str(user_id), first=first, after=after, max_page=info.context.settings.max_page_size
        )
    return EventConnection.from_page(page)


async def event_types(info: Info[Context, None]) -> list[EventTypeWeight]:
    """Every event type and its training weight."""
    async with info.context.session() as session:
        rows = await service.list_event_types(session)
    return [EventTypeWeight(event_type=r.name, weight=r.weight, conversion=r.conversion) for r in rows]


async def _freshen(info: Info[Context, None], user_ids: list[str]) -> None:
    for user_id in user_ids:
        await invalidate_user(info.context.cache, user_id)
    await info.context.note_writes(user_ids)


async def log_event(
    info: Info[Context, None], input: Annotated[EventInput, strawberry.argument(description="The event.")]
) -> LogEventResult:
    """Log one event; the same `eventId` twice stores one event."""
    known = await info.context.state.recommender.event_weights()  # a process memo, read before the session
    async with info.context.session() as session:
        row, duplicate, batch = await service.log_event(
            session,
            data=input.to_dict(),
            max_future_seconds=info.context.settings.max_event_future_seconds,
            recent=info.context.state.impressions.recent,
            known_types=known,
        )
    await _freshen(info, batch.user_ids)
    return LogEventResult(event=Event.from_model(row), duplicate=duplicate)


async def log_events(
    info: Info[Context, None],
    inputs: Annotated[list[EventInput], strawberry.argument(description="The events (at most the batch limit).")],
) -> BatchResult:
    """Log many events in one transaction; invalid ones are reported by index, valid ones stored."""
    known = await info.context.state.recommender.event_weights()
    async with info.context.session() as session:
        batch = await service.log_events(
            session,
            inputs=[i.to_dict() for i in inputs],
            max_batch=info.context.settings.max_batch_size,
            max_future_seconds=info.context.settings.max_event_future_seconds,
            recent=info.context.state.impressions.recent,
            known_types=known,
        )
    await _freshen(info, batch.user_ids)
    return BatchResult.from_outcome(batch.outcome)


async def set_event_type_weight(
    info: Info[Context, None],
    event_type: Annotated[str, strawberry.argument(description="Event type name (created when new).")],
    weight: Annotated[float, strawberry.argument(description="Training weight, -100..100; negative excludes.")],
    conversion: Annotated[
        bool | None,
        strawberry.argument(description="Count attributed events of this type as conversions; omitted keeps it."),
    ] = None,
) -> EventTypeWeight:
    """Create an event type or change its weight and conversion flag."""
    async with info.context.session() as session:
        row = await service.set_event_type_weight(session, event_type=event_type, weight=weight, conversion=conversion)
    return EventTypeWeight(event_type=row.name, weight=row.weight, conversion=row.conversion)
