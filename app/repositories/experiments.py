"""SQL for A/B experiments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Experiment, ItemFactor


class ExperimentRepository:
    """Reads and writes `experiments`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, name: str) -> Experiment | None:
        """The experiment, or None."""
        return await self.session.get(Experiment, name, populate_existing=True)

    async def list_all(self) -> list[Experiment]:
        """Every experiment, running ones first, then by name."""
        stmt = select(Experiment).order_by(Experiment.active.desc(), Experiment.name)
        return list(await self.session.scalars(stmt))

    async def list_active(self) -> list[Experiment]:
        """The running experiments."""
        return list(await self.session.scalars(select(Experiment).where(Experiment.active)))

    async def active_on(self, placement: str | None, *, other_than: str) -> Experiment | None:
        """A running experiment on `placement` other than `other_than`, or None."""
        stmt = select(Experiment).where(
            Experiment.active,
            func.coalesce(Experiment.placement, "") == (placement or ""),
            Experiment.name != other_than,
        )
        return await self.session.scalar(stmt)

    async def upsert(self, name: str, values: dict[str, Any]) -> Experiment:
        """Insert or replace the experiment's placement, arms and state."""
        changes = {**values, "updated_at": text("now()")}
        stmt = insert(Experiment).values(name=name, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[Experiment.name], set_=changes))
        row = await self.get_by_name(name)
        assert row is not None
        return row

    async def stop(self, name: str) -> None:
        """Mark the experiment stopped now."""
        stmt = update(Experiment).where(Experiment.name == name, Experiment.active)
        await self.session.execute(stmt.values(active=False, stopped_at=text("now()"), updated_at=text("now()")))

    async def versions_with_factors(self, version_ids: list[int]) -> set[int]:
        """Those of `version_ids` that have item factors stored."""
        stmt = select(ItemFactor.model_version_id).where(ItemFactor.model_version_id.in_(version_ids)).distinct()
        return set(await self.session.scalars(stmt))
