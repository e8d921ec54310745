"""Attributed events: an event carrying a `recommendationId` counts for that list's strategy and arm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.metrics import CLICKS, CONVERSIONS
from app.models import Impression as ImpressionRow
from app.repositories.event_types import EventTypeRepository
from app.services.impressions import Impression

UNKNOWN = ("unknown", "", "")  # the list was served elsewhere and is not written yet, or never was


async def count_outcomes(
    session: AsyncSession, rows: Sequence[dict[str, Any]], recent: Mapping[str, Impression]
) -> None:
    """Count clicks (positive-weight types) and conversions (conversion types) of newly stored attributed events."""
    attributed = [r for r in rows if r.get("recommendation_id")]
    if not attributed:
        return
    types = {t.name: t for t in await EventTypeRepository(session).list_all()}
    labels = await _labels(session, {str(r["recommendation_id"]) for r in attributed}, recent)
    for row in attributed:
        kind = types.get(row["event_type"])
        label = labels.get(str(row["recommendation_id"]), UNKNOWN)
        if kind is not None and kind.weight > 0:
            CLICKS.labels(*label).inc()
        if kind is not None and kind.conversion:
            CONVERSIONS.labels(*label).inc()


async def _labels(
    session: AsyncSession, request_ids: set[str], recent: Mapping[str, Impression]
) -> dict[str, tuple[str, str, str]]:
    found = {rid: recent[rid].labels() for rid in request_ids if rid in recent}
    missing = sorted(request_ids - set(found))
    if missing:
        stmt = select(ImpressionRow.request_id, ImpressionRow.strategy, ImpressionRow.experiment, ImpressionRow.arm)
        for rid, strategy, experiment, arm in await session.execute(stmt.where(ImpressionRow.request_id.in_(missing))):
            found[rid] = (strategy, experiment or "", arm or "")
    return found
