"""A request's business controls: filter, boosts, diversity and placement, with placement defaults applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db import SessionFactory
from app.errors import InvalidInput
from app.repositories.filters import ContentRules
from app.services.filters import Boost, check_diversity, parse_boosts, parse_filter
from app.services.placements import get_defaults

DEFAULT_COUNT = 10
DEFAULT_STRATEGY = "hybrid"
MAX_RERANK_IDS = 500
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class Controls:
    """What shapes one request beyond the user: content rules, boosts, MMR diversity, the placement used."""

    rules: ContentRules | None = None
    boosts: tuple[Boost, ...] = ()
    diversity: float = 0.0
    placement: str | None = None
    placement_version: int | None = None

    def key(self) -> list[Any]:
        """Canonical form for cache keys (the placement's version makes its changes invalidate)."""
        return [
            self.rules.key() if self.rules else None,
            [b.key() for b in self.boosts],
            self.diversity,
            self.placement,
            self.placement_version,
        ]


@dataclass(frozen=True)
class Resolved:
    """Controls plus the strategy and count a request ends up with."""

    controls: Controls
    strategy: str
    count: int


@dataclass(frozen=True)
class ControlArgs:
    """The request's explicit control arguments, as received (None = not given)."""

    filter: dict[str, Any] | None = None
    boosts: list[dict[str, Any]] | None = None
    diversity: float | None = None
    placement: str | None = None
    strategy: str | None = None
    count: int | None = None


async def resolve(sessions: SessionFactory, args: ControlArgs) -> Resolved:
    """Validate the explicit arguments and fill the missing ones from the placement (NOT_FOUND if unknown)."""
    rules = parse_filter(args.filter)
    boosts = parse_boosts(args.boosts) if args.boosts is not None else None
    diversity = check_diversity(args.diversity)
    if args.placement is None:
        controls = Controls(rules, boosts or (), diversity or 0.0)
        count = DEFAULT_COUNT if args.count is None else args.count
        return Resolved(controls, args.strategy or DEFAULT_STRATEGY, count)
    async with sessions() as session:
        p = await get_defaults(session, name=args.placement)
    controls = Controls(
        rules=rules if args.filter is not None else p.rules,
        boosts=boosts if boosts is not None else p.boosts,
        diversity=diversity if diversity is not None else (p.diversity or 0.0),
        placement=p.name,
        placement_version=p.version,
    )
    strategy = args.strategy or p.strategy or DEFAULT_STRATEGY
    count = args.count if args.count is not None else (p.count or DEFAULT_COUNT)
    return Resolved(controls, strategy, count)


def rerank_ids(content_ids: Sequence[str]) -> list[str]:
    """The ids to re-rank: 1-500 of them, each at most 255 characters; duplicates keep their first position."""
    if not 1 <= len(content_ids) <= MAX_RERANK_IDS:
        raise InvalidInput(f"contentIds must list 1-{MAX_RERANK_IDS} ids, got {len(content_ids)}", field="contentIds")
    for i, cid in enumerate(content_ids):
        if len(cid) > MAX_ID_LENGTH:
            raise InvalidInput(f"contentIds[{i}] is longer than {MAX_ID_LENGTH} characters", field=f"contentIds[{i}]")
    return list(dict.fromkeys(content_ids))
