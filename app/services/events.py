"""Behavior events: validated, idempotent logging and newest-first listing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError, InvalidInput, NotFound
from app.metrics import EVENTS_INGESTED
from app.models import Event, EventType
from app.repositories.content import ContentRepository
from app.repositories.event_types import EventTypeRepository
from app.repositories.events import EventRepository
from app.repositories.pagination import decode_cursor
from app.repositories.users import UserRepository
from app.services.attribution import count_outcomes
from app.services.content import BatchOutcome, Page
from app.services.impressions import Impression
from app.services.sessions import event_subject
from app.services.validation import EventWrite, check_count, validate


@dataclass
class LoggedBatch:
    """The outcome of a batch plus what was stored, for freshness updates."""

    outcome: BatchOutcome
    rows: list[dict[str, Any]] = field(default_factory=list)
    stored_ids: set[uuid.UUID] = field(default_factory=set)

    @property
    def user_ids(self) -> list[str]:
        """Users with newly stored events."""
        return sorted({r["user_id"] for r in self.rows if r["event_id"] in self.stored_ids})


async def log_events(
    session: AsyncSession,
    *,
    inputs: Sequence[dict[str, Any]],
    max_batch: int,
    single: bool = False,
    recent: Mapping[str, Impression] | None = None,
) -> LoggedBatch:
    """Store the valid events of a batch in one transaction; invalid ones are reported by index."""
    check_count(len(inputs), name="inputs", maximum=max_batch)
    writes, errors = await _validated(session, inputs, single=single)
    rows = [w.model_dump() for w in writes.values()]
    batch = LoggedBatch(outcome=BatchOutcome(errors=errors), rows=rows)
    if rows:
        await UserRepository(session).ensure_exist(sorted({r["user_id"] for r in rows}))
        batch.stored_ids = await EventRepository(session).insert_many(rows)
        await _touch_users(session, rows)
        await session.commit()
    batch.outcome.accepted = len(batch.stored_ids)
    batch.outcome.duplicates = len(inputs) - len(errors) - len(batch.stored_ids)
    stored = [row for row in rows if row["event_id"] in batch.stored_ids]
    for row in stored:
        EVENTS_INGESTED.labels(row["event_type"]).inc()
    await count_outcomes(session, stored, recent or {})
    return batch


async def log_event(
    session: AsyncSession, *, data: dict[str, Any], recent: Mapping[str, Impression] | None = None
) -> tuple[Event, bool, LoggedBatch]:
    """Store one event; returns the stored event and whether its id was already stored."""
    batch = await log_events(session, inputs=[data], max_batch=1, single=True, recent=recent)
    if batch.outcome.errors:
        message = batch.outcome.errors[0][1]
        raise InvalidInput(message, field=message.split(":", 1)[0])
    event_id = batch.rows[0]["event_id"]
    stored = await EventRepository(session).get_by_ids([event_id])
    if not stored:
        raise NotFound(f"event {event_id} not found", field="input.eventId")
    return stored[0], not batch.stored_ids, batch


def _prefix(index: int, single: bool) -> str:
    return "input" if single else f"inputs[{index}]"


async def _validated(
    session: AsyncSession, inputs: Sequence[dict[str, Any]], *, single: bool
) -> tuple[dict[int, EventWrite], list[tuple[int, str]]]:
    writes: dict[int, EventWrite] = {}
    errors: list[tuple[int, str]] = []
    for index, data in enumerate(inputs):
        try:
            write = validate(EventWrite, data, prefix=_prefix(index, single))
            write.user_id = event_subject(write.user_id, write.session_id, prefix=_prefix(index, single))
            writes[index] = write
        except AppError as exc:
            errors.append((index, exc.message))
    types = {t.name: t for t in await EventTypeRepository(session).list_all()}
    known = await ContentRepository(session).existing_ids(sorted({w.content_id for w in writes.values()}))
    for index, write in list(writes.items()):
        problem = _reference_problem(write, types, known, _prefix(index, single))
        if problem:
            errors.append((index, problem))
            del writes[index]
    for write in writes.values():
        write.event_id = write.event_id or uuid.uuid4()
        write.timestamp = write.timestamp or datetime.now(UTC)
    return writes, sorted(errors)


def _reference_problem(write: EventWrite, types: dict[str, EventType], known: set[str], prefix: str) -> str | None:
    if write.event_type not in types:
        allowed = ", ".join(sorted(types))
        return f"{prefix}.eventType: unknown event type {write.event_type!r}; allowed types: {allowed}"
    if write.content_id not in known:
        return f"{prefix}.contentId: unknown content {write.content_id!r}"
    return None


async def _touch_users(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    latest: dict[str, datetime] = {}
    for row in rows:
        latest[row["user_id"]] = max(latest.get(row["user_id"], row["timestamp"]), row["timestamp"])
    await UserRepository(session).touch(latest)


async def list_events(session: AsyncSession, *, user_id: str, first: int, after: str | None, max_page: int) -> Page:
    """A page of the user's events, newest first."""
    check_count(first, name="first", maximum=max_page)
    cursor = None
    if after is not None:
        ts, event_id = decode_cursor(after, 2)
        try:
            cursor = (datetime.fromisoformat(ts), uuid.UUID(event_id))
        except ValueError:
            raise InvalidInput("after: not a valid cursor", field="after") from None
    rows = await EventRepository(session).list_for_user(user_id, first=first, after=cursor)
    total = (await EventRepository(session).count_for_users([user_id])).get(user_id, 0)
    return Page(items=rows[:first], has_next=len(rows) > first, total=total)


async def set_event_type_weight(
    session: AsyncSession, *, event_type: str, weight: float, conversion: bool | None = None
) -> EventType:
    """Create or change an event type's weight (a negative weight marks an exclusion like dislike) and
    whether it counts as a conversion (None keeps the stored flag; new types are not conversions)."""
    if not (-100.0 <= weight <= 100.0) or weight != weight:
        raise InvalidInput("weight must be a number between -100 and 100", field="weight")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", event_type):
        raise InvalidInput("eventType must match ^[a-z][a-z0-9_]{0,63}$", field="eventType")
    row = await EventTypeRepository(session).set_weight(event_type, weight, conversion=conversion)
    await session.commit()
    return row


async def list_event_types(session: AsyncSession) -> list[EventType]:
    """Every event type, by name."""
    return await EventTypeRepository(session).list_all()
