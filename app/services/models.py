"""The model registry: listing and activating versions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import Experiment, ModelVersion
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
    if is_pruned(version):
        raise Conflict(
            f"model version {version_id} was pruned by RECENGINE_MODEL_RETENTION (no factors left); train again",
            field="id",
        )
    await repo.activate(version)
    await session.commit()
    return version


PRUNED = "pruned_at"  # training_stats key set when a version's factors, links and index were deleted


def is_pruned(version: ModelVersion) -> bool:
    """Whether the version's artifacts were deleted by retention."""
    return PRUNED in (version.training_stats or {})


def protected_versions(versions: list[ModelVersion], in_experiments: set[int]) -> set[int]:
    """Versions retention must never prune: the active ones and those a running experiment's arm serves."""
    return {v.id for v in versions if v.status == "active" or v.id in in_experiments}


async def experiment_versions(session: AsyncSession) -> set[int]:
    """Model versions named by an arm of a running experiment."""
    rows = await session.scalars(select(Experiment.arms).where(Experiment.active.is_(True)))
    return {int(a["model_version"]) for arms in rows for a in arms if a.get("model_version") is not None}


async def prune_versions(session: AsyncSession, *, keep: int) -> list[int]:
    """Keep the protected versions and the `keep` newest others; delete the rest's factors, links and
    HNSW indexes (RECENGINE_MODEL_RETENTION). Returns the ids pruned now."""
    repo = ModelVersionRepository(session)
    versions = await repo.list_all()  # newest first
    protected = protected_versions(versions, await experiment_versions(session))
    others = [v for v in versions if v.id not in protected]
    doomed = [v.id for v in others[keep:] if not is_pruned(v)]
    for version_id in doomed:
        await repo.drop_artifacts(version_id)
    await session.commit()
    return doomed
