"""SQL for online metrics: impressions joined with the events attributed to them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# dimension -> impression columns it groups by (names are ours, never the caller's text)
DIMENSION_COLUMNS: dict[str, tuple[str, ...]] = {
    "strategy": ("strategy",),
    "model_version": ("model_version",),
    "placement": ("placement",),
    "experiment_arm": ("experiment", "arm"),
}
ALL_COLUMNS = ("strategy", "model_version", "placement", "experiment", "arm")

# Impressions count shown items; a click is a distinct (list, item) with an attributed event of positive
# weight, a conversion one with an attributed event of a conversion type. Attributed events are looked
# up from a day before `since` (client clocks run early) for the lists served in the window.
STATS = """
WITH served AS (
    SELECT request_id, coalesce(user_id, '~session:' || session_id) AS subject,
           cardinality(item_ids) AS shown, {columns}
    FROM impressions
    WHERE served_at >= :since AND served_at < :until {experiment}
), acted AS (
    SELECT e.recommendation_id,
           count(DISTINCT e.content_id) FILTER (WHERE t.weight > 0) AS clicks,
           count(DISTINCT e.content_id) FILTER (WHERE t.conversion) AS conversions
    FROM events e JOIN event_types t ON t.name = e.event_type
    WHERE e.recommendation_id IN (SELECT request_id FROM served)
      AND e."timestamp" >= CAST(:since AS timestamptz) - interval '1 day'
    GROUP BY e.recommendation_id
)
SELECT {select_columns} sum(s.shown) AS impressions, count(DISTINCT s.subject) AS users,
       coalesce(sum(a.clicks), 0) AS clicks, coalesce(sum(a.conversions), 0) AS conversions
FROM served s LEFT JOIN acted a ON a.recommendation_id = s.request_id
{group_by}
"""


class StatsRepository:
    """Aggregates over `impressions` and attributed `events`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def aggregate(
        self, *, since: datetime, until: datetime, dimensions: Sequence[str], experiment: str | None = None
    ) -> list[dict[str, Any]]:
        """One row per combination of the dimensions' columns (one row in all without dimensions)."""
        columns = [c for d in dimensions for c in DIMENSION_COLUMNS[d]]
        grouped = ", ".join(f"s.{c}" for c in columns)
        sql = STATS.format(
            columns=", ".join(ALL_COLUMNS),
            experiment="AND experiment = :experiment" if experiment else "",
            select_columns=f"{grouped}," if columns else "",
            group_by=f"GROUP BY {grouped} ORDER BY {grouped}" if columns else "HAVING count(*) > 0",
        )
        params: dict[str, Any] = {"since": since, "until": until}
        if experiment:
            params["experiment"] = experiment
        rows = await self.session.execute(text(sql), params)
        return [dict(r._mapping) for r in rows]
