"""Online metrics: impressions, clicks and conversions of served lists, grouped as asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.repositories.stats import StatsRepository


class StatsDimension(str, Enum):
    """What `recommendationStats` can group by."""

    STRATEGY = "strategy"
    MODEL_VERSION = "model_version"
    PLACEMENT = "placement"
    EXPERIMENT_ARM = "experiment_arm"


@dataclass(frozen=True)
class RecommendationStats:
    """One group's figures; the dimensions not grouped by are None."""

    strategy: str | None
    model_version: int | None
    placement: str | None
    experiment: str | None
    arm: str | None
    impressions: int
    users: int
    clicks: int
    conversions: int

    @property
    def ctr(self) -> float:
        """Clicks per shown item."""
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def conversion_rate(self) -> float:
        """Conversions per shown item."""
        return self.conversions / self.impressions if self.impressions else 0.0


async def recommendation_stats(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime | None = None,
    group_by: Sequence[StatsDimension] = (),
    experiment: str | None = None,
) -> list[RecommendationStats]:
    """Figures of the lists served in [since, until) (until defaults to now)."""
    since, until = _aware(since), _aware(until or datetime.now(UTC))
    if until <= since:
        raise InvalidInput("until must be later than since", field="until")
    dimensions = list(dict.fromkeys(d.value for d in group_by))
    rows = await StatsRepository(session).aggregate(
        since=since, until=until, dimensions=dimensions, experiment=experiment
    )
    return [
        RecommendationStats(
            strategy=r.get("strategy"),
            model_version=r.get("model_version"),
            placement=r.get("placement"),
            experiment=r.get("experiment"),
            arm=r.get("arm"),
            impressions=int(r["impressions"] or 0),
            users=int(r["users"]),
            clicks=int(r["clicks"]),
            conversions=int(r["conversions"]),
        )
        for r in rows
    ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
