"""Placements: named recommendation defaults (strategy, count, filter, boosts, diversity), stored in the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.models import Placement
from app.repositories.filters import ContentRules
from app.repositories.placements import PlacementRepository
from app.services.filters import Boost, check_diversity, parse_boosts, parse_filter
from app.services.validation import check_count

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.:-]{1,100}$")
STRATEGIES = ("hybrid", "collaborative", "content_based", "popular", "trending")
MAX_DESCRIPTION = 1000


@dataclass(frozen=True)
class PlacementDefaults:
    """A stored placement, parsed: what `recommendations(placement: …)` falls back to."""

    name: str
    version: int
    strategy: str | None
    count: int | None
    rules: ContentRules | None
    boosts: tuple[Boost, ...]
    diversity: float | None


def _check_name(name: str, field: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(f"{field} must be 1-100 letters, digits, _ . : or -", field=field)
    return name


def _values(data: dict[str, Any], max_count: int) -> dict[str, Any]:
    """Validated column values of a PlacementInput dict."""
    strategy = data.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise InvalidInput(f"input.strategy must be one of {', '.join(STRATEGIES)}", field="input.strategy")
    if data.get("count") is not None:
        check_count(int(data["count"]), name="input.count", maximum=max_count)
    description = data.get("description")
    if description is not None and (len(description) > MAX_DESCRIPTION or "\x00" in description):
        raise InvalidInput(f"input.description must be at most {MAX_DESCRIPTION} characters", field="input.description")
    rules = parse_filter(data.get("filter"), field="input.filter")
    boosts = parse_boosts(data.get("boosts"), field="input.boosts")
    return {
        "name": _check_name(data["name"], "input.name"),
        "description": description,
        "strategy": strategy,
        "count": data.get("count"),
        "filter": rules.to_json() if rules else None,
        "boosts": [b.to_json() for b in boosts],
        "diversity": check_diversity(data.get("diversity"), field="input.diversity"),
    }


async def upsert_placement(session: AsyncSession, *, data: dict[str, Any], max_count: int) -> Placement:
    """Validate and store a placement; every write gives it a new version (old cached results go stale)."""
    values = _values(data, max_count)
    repo = PlacementRepository(session)
    await repo.upsert(values)
    await session.commit()
    row = await repo.get_by_name(values["name"])
    assert row is not None
    return row


async def delete_placement(session: AsyncSession, *, name: str) -> bool:
    """Remove a placement; whether it existed."""
    found = await PlacementRepository(session).delete(name)
    await session.commit()
    return found


async def list_placements(session: AsyncSession) -> list[Placement]:
    """Every placement by name."""
    return await PlacementRepository(session).list_all()


async def get_defaults(session: AsyncSession, *, name: str, field: str = "placement") -> PlacementDefaults:
    """The placement's parsed defaults, or NotFound naming `field`."""
    row = await PlacementRepository(session).get_by_name(name)
    if row is None:
        raise NotFound(f"placement {name!r} not found", field=field)
    return defaults_of(row)


def defaults_of(row: Placement) -> PlacementDefaults:
    """Parse a stored placement (it was validated when written)."""
    return PlacementDefaults(
        name=row.name,
        version=row.version,
        strategy=row.strategy,
        count=row.count,
        rules=parse_filter(row.filter, field="placement.filter"),
        boosts=parse_boosts(row.boosts, field="placement.boosts"),
        diversity=row.diversity,
    )
