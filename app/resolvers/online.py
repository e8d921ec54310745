"""Resolvers of the online loop: stats, experiments, session merges."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.online import Experiment, ExperimentInput, MergeResult, RecommendationStats, StatsDimension
from app.services import experiments as exp_service
from app.services import sessions as session_service
from app.services import stats as stats_service


async def recommendation_stats(
    info: Info[Context, None],
    since: Annotated[datetime, strawberry.argument(description="Lists served from this time on (inclusive).")],
    until: Annotated[
        datetime | None, strawberry.argument(description="Lists served before this time; defaults to now.")
    ] = None,
    group_by: Annotated[
        list[StatsDimension] | None, strawberry.argument(description="Group by these; none gives one total row.")
    ] = None,
) -> list[RecommendationStats]:
    """Impressions, clicks and conversions of the lists served in a window."""
    dimensions = [stats_service.StatsDimension(d.value) for d in group_by or []]
    async with info.context.session() as session:
        rows = await stats_service.recommendation_stats(session, since=since, until=until, group_by=dimensions)
    return [RecommendationStats.from_domain(r) for r in rows]


async def experiments(info: Info[Context, None]) -> list[Experiment]:
    """Every experiment, running ones first."""
    async with info.context.session() as session:
        rows = await exp_service.list_experiments(session)
    return [Experiment.from_domain(r) for r in rows]


async def upsert_experiment(
    info: Info[Context, None],
    input: Annotated[ExperimentInput, strawberry.argument(description="The experiment.")],
) -> Experiment:
    """Create or replace an experiment."""
    async with info.context.session() as session:
        spec = await exp_service.upsert_experiment(session, data=input.to_dict())
    info.context.state.experiments.forget()
    return Experiment.from_domain(spec)


async def stop_experiment(
    info: Info[Context, None],
    name: Annotated[str, strawberry.argument(description="The experiment to stop.")],
) -> Experiment:
    """Stop an experiment; its figures stay."""
    async with info.context.session() as session:
        spec = await exp_service.stop_experiment(session, name=name)
    info.context.state.experiments.forget()
    return Experiment.from_domain(spec)


async def merge_session(
    info: Info[Context, None],
    session_id: Annotated[str, strawberry.argument(description="The anonymous session (as logged in events).")],
    user_id: Annotated[strawberry.ID, strawberry.argument(description="The user who signed in.")],
) -> MergeResult:
    """Attach an anonymous session's events to a user (idempotent)."""
    async with info.context.session() as session:
        moved = await session_service.merge_session(
            session, info.context.cache, session_id=session_id, user_id=str(user_id)
        )
    return MergeResult(session_id=session_id, user_id=user_id, events_moved=moved)
