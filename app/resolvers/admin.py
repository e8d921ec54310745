"""Resolvers for the model registry."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.recommendations import ModelVersion
from app.services import models as service


async def model_versions(info: Info[Context, None]) -> list[ModelVersion]:
    """Every trained model version, newest first."""
    async with info.context.session() as session:
        rows = await service.list_versions(session)
    return [ModelVersion.from_model(r) for r in rows]


async def activate_model(
    info: Info[Context, None], id: Annotated[int, strawberry.argument(description="Version id.")]
) -> ModelVersion:
    """Make a version active (roll back or forward); cached results are invalidated."""
    async with info.context.session() as session:
        row = await service.activate(session, version_id=id)
    await info.context.state.recommender.invalidate_all()
    return ModelVersion.from_model(row)
