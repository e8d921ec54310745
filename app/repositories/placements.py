"""SQL for placements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Placement

FIELDS = ("description", "strategy", "count", "filter", "boosts", "diversity")


class PlacementRepository:
    """Reads and writes `placements`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, name: str) -> Placement | None:
        """The placement, or None."""
        return await self.session.get(Placement, name, populate_existing=True)

    async def list_all(self) -> list[Placement]:
        """Every placement by name."""
        return list(await self.session.scalars(select(Placement).order_by(Placement.name)))

    async def upsert(self, values: dict[str, Any]) -> None:
        """Insert or replace; every write takes a new version from the sequence."""
        stmt = insert(Placement).values(**values)
        update: dict[str, Any] = {f: stmt.excluded[f] for f in FIELDS}
        update |= {"version": text("nextval('placement_versions')"), "updated_at": func.now()}
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[Placement.name], set_=update))

    async def delete(self, name: str) -> bool:
        """Remove the placement; whether it existed."""
        result = await self.session.execute(delete(Placement).where(Placement.name == name).returning(Placement.name))
        return result.first() is not None
