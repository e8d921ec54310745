"""SQL for event types and their weights."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EventType


class EventTypeRepository:
    """Reads and writes `event_types`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_all(self) -> list[EventType]:
        """Every event type, by name."""
        return list(await self.session.scalars(select(EventType).order_by(EventType.name)))

    async def weights(self) -> dict[str, float]:
        """Event type name -> weight (plain rows: no ORM objects for a lookup done on every logged event)."""
        rows = await self.session.execute(select(EventType.name, EventType.weight).order_by(EventType.name))
        return {name: weight for name, weight in rows.tuples()}

    async def set_weight(self, name: str, weight: float, *, conversion: bool | None = None) -> EventType:
        """Create or change an event type's weight (and its conversion flag unless None)."""
        changes: dict[str, object] = {"weight": weight}
        if conversion is not None:
            changes["conversion"] = conversion
        stmt = insert(EventType).values(name=name, **changes)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[EventType.name], set_=changes))
        row = await self.session.get(EventType, name, populate_existing=True)
        assert row is not None
        return row
