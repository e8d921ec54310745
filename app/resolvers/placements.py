"""Resolvers for placements (admin only)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.controls import Placement, PlacementInput
from app.services import placements as service


async def placements(info: Info[Context, None]) -> list[Placement]:
    """Every placement by name."""
    async with info.context.session() as session:
        rows = await service.list_placements(session)
    return [Placement.from_model(r) for r in rows]


async def upsert_placement(
    info: Info[Context, None], input: Annotated[PlacementInput, strawberry.argument(description="The placement.")]
) -> Placement:
    """Create or replace a placement; results cached under its previous version go stale."""
    ctx = info.context
    async with ctx.session() as session:
        row = await service.upsert_placement(session, data=input.to_dict(), max_count=ctx.settings.max_page_size)
    return Placement.from_model(row)


async def delete_placement(
    info: Info[Context, None], name: Annotated[str, strawberry.argument(description="Placement name.")]
) -> bool:
    """Remove a placement; true when it existed."""
    async with info.context.session() as session:
        return await service.delete_placement(session, name=name)
