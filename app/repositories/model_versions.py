"""SQL for the model registry and ALS factors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ItemFactor, ModelVersion
from app.notifications import Topic, notify
from app.repositories import bulk


class ModelVersionRepository:
    """Reads and writes `model_versions`, `user_factors` and `item_factors`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, version_id: int) -> ModelVersion | None:
        """The version, or None."""
        return await self.session.get(ModelVersion, version_id)

    async def get_active(self, kind: str = "als") -> ModelVersion | None:
        """The active version of `kind`, or None."""
        stmt = select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status == "active")
        return await self.session.scalar(stmt)

    async def list_all(self) -> list[ModelVersion]:
        """Every version, newest first."""
        return list(await self.session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())))

    async def add(self, *, kind: str, params: dict[str, Any], stats: dict[str, Any]) -> ModelVersion:
        """Register a new candidate version."""
        version = ModelVersion(kind=kind, params=params, training_stats=stats, metrics={}, status="candidate")
        self.session.add(version)
        await self.session.flush()
        return version

    async def set_metrics(self, version_id: int, metrics: dict[str, Any]) -> None:
        """Store offline metrics of a version."""
        await self.session.execute(update(ModelVersion).where(ModelVersion.id == version_id).values(metrics=metrics))

    async def activate(self, version: ModelVersion) -> None:
        """Make `version` the active one of its kind; the previous one retires."""
        await self.session.execute(
            update(ModelVersion)
            .where(ModelVersion.kind == version.kind, ModelVersion.status == "active")
            .values(status="retired")
        )
        await self.session.execute(update(ModelVersion).where(ModelVersion.id == version.id).values(status="active"))
        await notify(self.session, Topic.MODEL)  # every API process reloads when this commits
        await self.session.refresh(version)

    async def drop_artifacts(self, version_id: int) -> None:
        """Delete a version's factors, links and HNSW index; its registry row stays, marked pruned."""
        await self.session.execute(text("SET LOCAL statement_timeout = 0"))  # a batch job, not a request
        for table in ("item_factors", "user_factors", "item_links"):
            await self.session.execute(text(f"DELETE FROM {table} WHERE model_version_id = :v"), {"v": version_id})
        await self.session.execute(text(f"DROP INDEX IF EXISTS ix_item_factors_v{int(version_id)}"))
        await self.session.execute(
            text(
                "UPDATE model_versions SET training_stats = training_stats || jsonb_build_object('pruned_at', now())"
                " WHERE id = :v"
            ),
            {"v": version_id},
        )

    async def write_item_factors(self, version_id: int, ids: Sequence[str], factors: np.ndarray) -> None:
        """Store item factors of a version, then build its HNSW inner-product index."""
        await self.session.execute(text("SET LOCAL statement_timeout = 0"))  # a batch job, not a request
        await bulk.copy_factors(self.session, "item_factors", "content_id", version_id, ids, factors)
        dim = int(factors.shape[1])
        await self.session.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS ix_item_factors_v{int(version_id)} ON item_factors "
                f"USING hnsw ((factors::vector({dim})) vector_ip_ops) WHERE model_version_id = {int(version_id)}"
            )
        )
        # fresh statistics, or the planner still thinks the new version has no rows and sorts all of them
        await self.session.execute(text("ANALYZE item_factors"))

    async def write_user_factors(self, version_id: int, ids: Sequence[str], factors: np.ndarray) -> None:
        """Store user factors of a version."""
        await bulk.copy_factors(self.session, "user_factors", "user_id", version_id, ids, factors)

    async def item_factors(self, version_id: int) -> tuple[list[str], np.ndarray]:
        """All item factors of a version, in content id order."""
        stmt = (
            select(ItemFactor.content_id, ItemFactor.factors)
            .where(ItemFactor.model_version_id == version_id)
            .order_by(ItemFactor.content_id)
        )
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r[0] for r in rows], np.vstack([np.asarray(r[1], dtype=np.float32) for r in rows])
