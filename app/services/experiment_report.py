"""An experiment's report: CTR per arm and a two-proportion z-test of each arm against the first."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from scipy.stats import norm
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.experiments import ExperimentSpec, get_experiment
from app.services.stats import RecommendationStats, StatsDimension, recommendation_stats


@dataclass(frozen=True)
class ArmReport:
    """One arm's figures; `p_value` compares its CTR with the first arm's (None for the first arm)."""

    arm: str
    stats: RecommendationStats | None
    z: float | None
    p_value: float | None


def two_proportion_z_test(clicks_a: int, shown_a: int, clicks_b: int, shown_b: int) -> tuple[float, float] | None:
    """(z, two-sided p) of H0: both rates are equal (pooled variance); None when undefined."""
    if shown_a == 0 or shown_b == 0:
        return None
    pooled = (clicks_a + clicks_b) / (shown_a + shown_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / shown_a + 1 / shown_b))
    if se == 0:
        return None
    z = (clicks_b / shown_b - clicks_a / shown_a) / se
    return z, float(2 * norm.sf(abs(z)))


async def experiment_report(
    session: AsyncSession, *, name: str, since: datetime | None = None
) -> tuple[ExperimentSpec, list[ArmReport]]:
    """Per-arm figures since the experiment was created (or `since`), each arm tested against the first."""
    experiment = await get_experiment(session, name=name)
    rows = await recommendation_stats(
        session, since=since or experiment.created_at, group_by=[StatsDimension.EXPERIMENT_ARM], experiment=name
    )
    by_arm = {r.arm: r for r in rows}
    base = by_arm.get(experiment.arms[0].name)
    reports = []
    for index, arm in enumerate(experiment.arms):
        stats = by_arm.get(arm.name)
        test = None
        if index > 0 and base is not None and stats is not None:
            test = two_proportion_z_test(base.clicks, base.impressions, stats.clicks, stats.impressions)
        reports.append(ArmReport(arm.name, stats, test[0] if test else None, test[1] if test else None))
    return experiment, reports
