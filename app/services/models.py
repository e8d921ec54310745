"""The model registry: listing and activating versions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import ModelVersion
from app.repositories.model_versions import ModelVersionRepository


async def list_versions(session: AsyncSession) -> list[ModelVersion]:
    """Every version, newest first."""
    return await ModelVersionRepository(session).list_all()


async def activate(session: AsyncSession, *, version_id: int) -> ModelVersion:
    """Make a version the active one of its kind."""
    repo = ModelVersionRepository(session)
    version = await repo.get_by_id(version_id)
    if version is None:
        raise NotFound(f"model version {version_id} not found", field="id")
    await repo.activate(version)
    await session.commit()
    return version
