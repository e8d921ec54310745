"""SQL for behavior events: idempotent batched inserts and newest-first pages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Event, EventKey
from app.repositories import bulk
from app.repositories.arrays import among

COPY_THRESHOLD = 50  # below this arrays in one statement are cheaper than COPY through a staging table


def _record(row: dict[str, Any]) -> tuple[Any, ...]:
    """An event row in bulk.LOGGED_COLUMNS order."""
    values = {**row, "metadata": json.dumps(row.get("metadata") or {})}
    return tuple(values.get(column) for column in bulk.LOGGED_COLUMNS)


class EventRepository:
    """Reads and writes `events` (and `event_keys`, which make event ids idempotent)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
        """Store events whose ids are new, creating unknown users' minimal profiles and moving each user's
        last_active forward to their newest stored event, in one statement; returns the ids that were stored."""
        rows = sorted({r["event_id"]: r for r in reversed(rows)}.values(), key=lambda r: r["event_id"])
        if not rows:
            return set()
        records = [_record(r) for r in rows]
        if len(rows) >= COPY_THRESHOLD:
            return await bulk.copy_events(self.session, records, bulk.LOGGED_COLUMNS, profiles=True)
        return await bulk.store_logged(self.session, records)

    async def ids_of_other_users(self, owners: dict[uuid.UUID, str]) -> set[uuid.UUID]:
        """Of these event ids, those stored for a different user than the one given."""
        if not owners:
            return set()
        stmt = select(EventKey.event_id, EventKey.user_id).where(among(EventKey.event_id, owners))
        return {row[0] for row in await self.session.execute(stmt) if row[1] != owners[row[0]]}

    async def get_by_ids(self, event_ids: Sequence[uuid.UUID]) -> list[Event]:
        """Stored events with these ids (any partition)."""
        stmt = (
            select(Event)
            .join(EventKey, and_(EventKey.event_id == Event.event_id, EventKey.timestamp == Event.timestamp))
            .where(among(EventKey.event_id, event_ids))
        )
        return list(await self.session.scalars(stmt))

    async def list_for_user(self, user_id: str, *, first: int, after: tuple[datetime, uuid.UUID] | None) -> list[Event]:
        """Up to `first` + 1 of the user's events, newest first, after the cursor."""
        stmt = (
            select(Event)
            .where(Event.user_id == user_id)
            .order_by(Event.timestamp.desc(), Event.event_id.desc())
            .limit(first + 1)
        )
        if after is not None:
            ts, event_id = after
            stmt = stmt.where(or_(Event.timestamp < ts, and_(Event.timestamp == ts, Event.event_id < event_id)))
        return list(await self.session.scalars(stmt))

    async def list_latest_for_users(self, user_ids: Sequence[str], *, first: int) -> list[Event]:
        """The newest `first` + 1 events of each user, in one query."""
        ranked = (
            select(
                Event,
                func.row_number()
                .over(partition_by=Event.user_id, order_by=(Event.timestamp.desc(), Event.event_id.desc()))
                .label("rn"),
            )
            .where(among(Event.user_id, user_ids))
            .subquery()
        )
        stmt = select(Event).from_statement(
            select(ranked).where(ranked.c.rn <= first + 1).order_by(ranked.c.user_id, ranked.c.rn)
        )
        return list(await self.session.scalars(stmt))

    async def count_for_users(self, user_ids: Sequence[str]) -> dict[str, int]:
        """Events per user."""
        stmt = select(Event.user_id, func.count()).where(among(Event.user_id, user_ids)).group_by(Event.user_id)
        return {row[0]: int(row[1]) for row in await self.session.execute(stmt)}
