"""Behavior events: validated, idempotent logging and newest-first listing."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError, Conflict, InvalidInput, NotFound
from app.metrics import EVENTS_INGESTED
from app.models import Event, EventType
from app.repositories import popularity
from app.repositories.content import ContentRepository
from app.repositories.event_types import EventTypeRepository
from app.repositories.events import EventRepository
from app.repositories.pagination import decode_cursor
from app.security.faults import is_retryable
from app.services.attribution import count_outcomes
from app.services.content import BatchOutcome, Page
from app.services.impressions import Impression
from app.services.sessions import event_subject
from app.services.validation import MAX_EVENT_FUTURE_SECONDS, EventWrite, check_count, time_problem, validate

WRITE_ATTEMPTS = 4


@dataclass
class LoggedBatch:
    """The outcome of a batch plus what was stored, for freshness updates."""

    outcome: BatchOutcome
    rows: list[dict[str, Any]] = field(default_factory=list)
    stored_ids: set[uuid.UUID] = field(default_factory=set)
    conflicts: set[int] = field(default_factory=set)  # indexes whose event id belongs to another user

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
    max_future_seconds: int = MAX_EVENT_FUTURE_SECONDS,
    recent: Mapping[str, Impression] | None = None,
    known_types: Collection[str] = (),
) -> LoggedBatch:
    """Store the valid events of a batch in one transaction; invalid ones are reported by index.

    A deadlock or serialization failure with a concurrent batch rolls back and retries the write.
    `known_types` are event type names known to exist (a process memo): when every event's type is among
    them the event types are not read again; any other name is checked against the table.
    """
    check_count(len(inputs), name="inputs", maximum=max_batch)
    writes, errors = await _validated(
        session, inputs, single=single, max_future_seconds=max_future_seconds, known_types=known_types
    )
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            batch = await _store(session, writes, errors, single=single)
            break
        except DBAPIError as exc:
            await session.rollback()
            if attempt == WRITE_ATTEMPTS or not is_retryable(exc):
                raise
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)  # jitter, not crypto
    batch.outcome.accepted = len(batch.stored_ids)
    batch.outcome.duplicates = len(inputs) - len(batch.outcome.errors) - len(batch.stored_ids)
    stored = [row for row in batch.rows if row["event_id"] in batch.stored_ids]
    for row in stored:
        EVENTS_INGESTED.labels(row["event_type"]).inc()
    await count_outcomes(session, stored, recent or {})
    return batch


async def _store(
    session: AsyncSession, writes: dict[int, EventWrite], errors: list[tuple[int, str]], *, single: bool
) -> LoggedBatch:
    """One attempt at the batch's transaction. Rows go in event-id order, so two overlapping batches
    lock the same keys in the same order; an id already stored for another user is a conflict."""
    batch = LoggedBatch(outcome=BatchOutcome(errors=list(errors)))
    first_owner: dict[uuid.UUID | None, str | None] = {}
    for index, write in writes.items():  # the same id for two users inside the batch: the later one conflicts
        if first_owner.setdefault(write.event_id, write.user_id) != write.user_id:
            _conflict(batch, index, single)
    mine = [w for i, w in writes.items() if i not in batch.conflicts]
    rows = sorted((w.model_dump() for w in mine), key=lambda r: r["event_id"])
    batch.rows = rows
    if not rows:
        batch.outcome.errors.sort()
        return batch
    events = EventRepository(session)
    batch.stored_ids = await events.insert_many(rows)  # with the users' profiles and last_active
    repeated = {r["event_id"]: r["user_id"] for r in rows if r["event_id"] not in batch.stored_ids}
    foreign = await events.ids_of_other_users(repeated)
    for index, write in writes.items():
        if write.event_id in foreign and index not in batch.conflicts:
            _conflict(batch, index, single)
    batch.outcome.errors.sort()
    batch.rows = [r for r in rows if r["event_id"] not in foreign]
    await session.commit()
    return batch


def _conflict(batch: LoggedBatch, index: int, single: bool) -> None:
    batch.conflicts.add(index)
    message = f"{_prefix(index, single)}.eventId: this event id is already used by another user's event"
    batch.outcome.errors.append((index, message))


async def log_event(
    session: AsyncSession,
    *,
    data: dict[str, Any],
    max_future_seconds: int = MAX_EVENT_FUTURE_SECONDS,
    recent: Mapping[str, Impression] | None = None,
    known_types: Collection[str] = (),
) -> tuple[Event, bool, LoggedBatch]:
    """Store one event; returns the stored event and whether its id was already stored."""
    batch = await log_events(
        session,
        inputs=[data],
        max_batch=1,
        single=True,
        max_future_seconds=max_future_seconds,
        recent=recent,
        known_types=known_types,
    )
    if batch.outcome.errors:
        message = batch.outcome.errors[0][1]
        error = Conflict if batch.conflicts else InvalidInput
        raise error(message, field=message.split(":", 1)[0])
    row = batch.rows[0]
    if row["event_id"] in batch.stored_ids:  # just written: what was stored is what we hold, no need to re-read
        return stored_event(row), False, batch
    event_id = row["event_id"]
    stored = await EventRepository(session).get_by_ids([event_id])  # a duplicate: the earlier event is the answer
    if not stored:
        raise NotFound(f"event {event_id} not found", field="input.eventId")
    return stored[0], not batch.stored_ids, batch


def stored_event(row: dict[str, Any]) -> Event:
    """The event as stored from the row it was written from (a transient ORM object; no database read)."""
    return Event(
        event_id=row["event_id"],
        timestamp=row["timestamp"],
        user_id=row["user_id"],
        content_id=row["content_id"],
        event_type=row["event_type"],
        value=row["value"],
        session_id=row["session_id"],
        device_type=row["device_type"],
        platform=row["platform"],
        metadata_=row["metadata"],
        recommendation_id=row.get("recommendation_id"),
    )


def _prefix(index: int, single: bool) -> str:
    return "input" if single else f"inputs[{index}]"


async def _validated(
    session: AsyncSession,
    inputs: Sequence[dict[str, Any]],
    *,
    single: bool,
    max_future_seconds: int,
    known_types: Collection[str] = (),
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
    types = await _event_types(session, {w.event_type for w in writes.values()}, known_types)
    known = await ContentRepository(session).existing_ids(sorted({w.content_id for w in writes.values()}))
    latest = datetime.now(UTC) + timedelta(seconds=max_future_seconds)
    for index, write in list(writes.items()):
        prefix = _prefix(index, single)
        problem = time_problem(write.timestamp, latest, f"{prefix}.timestamp") or _reference_problem(
            write, types, known, prefix
        )
        if problem:
            errors.append((index, problem))
            del writes[index]
    for write in writes.values():
        write.event_id = write.event_id or uuid.uuid4()
        write.timestamp = write.timestamp or datetime.now(UTC)
    return writes, sorted(errors)


async def _event_types(session: AsyncSession, wanted: set[str], known_types: Collection[str]) -> Collection[str]:
    """The event type names to validate against: the memo when it holds every wanted name, else the table."""
    memo = set(known_types)
    return memo if wanted <= memo else set(await EventTypeRepository(session).weights())


def _reference_problem(write: EventWrite, types: Collection[str], known: set[str], prefix: str) -> str | None:
    if write.event_type not in types:
        allowed = ", ".join(sorted(types))
        return f"{prefix}.eventType: unknown event type {write.event_type!r}; allowed types: {allowed}"
    if write.content_id not in known:
        return f"{prefix}.contentId: unknown content {write.content_id!r}"
    return None


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
    return Page(items=rows[:first], has_next=len(rows) > first, total=total, has_previous=after is not None)


async def set_event_type_weight(
    session: AsyncSession, *, event_type: str, weight: float, conversion: bool | None = None
) -> EventType:
    """Create or change an event type's weight (a negative weight marks an exclusion like dislike) and
    whether it counts as a conversion (None keeps the stored flag; new types are not conversions)."""
    if not (-100.0 <= weight <= 100.0) or weight != weight:
        raise InvalidInput("weight must be a number between -100 and 100", field="weight")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", event_type):
        raise InvalidInput("eventType must match ^[a-z][a-z0-9_]{0,63}$", field="eventType")
    repo = EventTypeRepository(session)
    before = (await repo.weights()).get(event_type)
    row = await repo.set_weight(event_type, weight, conversion=conversion)
    if before is not None and (before > 0) != (weight > 0):  # its events join or leave popularity
        await popularity.refresh(session, commit=False)
    await session.commit()
    return row


async def list_event_types(session: AsyncSession) -> list[EventType]:
    """Every event type, by name."""
    return await EventTypeRepository(session).list_all()
