"""Resolvers for recommendations, similar items and trending."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.common import JSON
from app.schema.enums import ContentType, enum_str
from app.schema.online import ExperimentAssignment
from app.schema.recommendations import RecommendationResult, RecommendedItem, Strategy
from app.services import recommendations as service
from app.services import serving
from app.services.sessions import request_subject


async def recommend(
    info: Info[Context, None],
    *,
    user_id: str | None,
    count: int,
    content_type: ContentType | None,
    strategy: Strategy | None,
    exclude_ids: list[strawberry.ID] | None,
    context: JSON | None,
    session_id: str | None = None,
    placement: str | None = None,
    after: str | None = None,
) -> RecommendationResult:
    """Shared by the root query and `User.recommendations`."""
    request = serving.ServeRequest(
        subject=request_subject(user_id, session_id),
        count=count,
        content_type=enum_str(content_type),
        strategy=service.Strategy(str((strategy or Strategy.HYBRID).value)),
        exclude_ids=tuple(str(i) for i in exclude_ids or ()),
        context=context,
        placement=placement,
        after=after,
    )
    served = await serving.serve(serving_of(info), request, http_request_id=info.context.request_id)
    return result_of(served)


def serving_of(info: Info[Context, None]) -> serving.Serving:
    """The process's serving dependencies."""
    state = info.context.state
    return serving.Serving(state.recommender, state.impressions, state.experiments)


def result_of(served: serving.Served) -> RecommendationResult:
    """The GraphQL result of a served list, with its session and experiment arm."""
    result = RecommendationResult.from_domain(served.result)
    result.user_id = strawberry.ID(served.subject.user_id) if served.subject.user_id else None
    result.session_id = served.subject.session_id
    if served.assignment:
        result.experiment = ExperimentAssignment(name=served.assignment.experiment, arm=served.assignment.arm)
    return result


async def recommendations(
    info: Info[Context, None],
    user_id: Annotated[
        strawberry.ID | None, strawberry.argument(description="Who the recommendations are for (or give sessionId).")
    ] = None,
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this content type.")] = None,
    strategy: Annotated[Strategy, strawberry.argument(description="Retrieval strategy.")] = Strategy.HYBRID,
    exclude_ids: Annotated[list[strawberry.ID] | None, strawberry.argument(description="Never return these.")] = None,
    context: Annotated[JSON | None, strawberry.argument(description="Request context (page, device…).")] = None,
    session_id: Annotated[
        str | None,
        strawberry.argument(description="An anonymous visitor's session id, instead of userId (exactly one of them)."),
    ] = None,
    placement: Annotated[
        str | None,
        strawberry.argument(description="Where the list is shown; recorded with the impression, selects experiments."),
    ] = None,
    after: Annotated[
        strawberry.ID | None,
        strawberry.argument(
            description="The requestId of the previous page (same user or session): the list continues, "
            "nothing repeats; each page's requestId chains on."
        ),
    ] = None,
) -> RecommendationResult:
    """Personalized, explained recommendations for a user or an anonymous session."""
    return await recommend(
        info,
        user_id=str(user_id) if user_id is not None else None,
        count=count,
        content_type=content_type,
        strategy=strategy,
        exclude_ids=exclude_ids,
        context=context,
        session_id=session_id,
        placement=placement,
        after=str(after) if after is not None else None,
    )


async def similar(info: Info[Context, None], *, content_id: str, count: int) -> list[RecommendedItem]:
    """Shared by `similarContent` and `Content.similar`."""
    items = await service.similar_content(info.context.state.recommender, content_id=content_id, count=count)
    return [RecommendedItem.from_domain(i) for i in items]


async def similar_content(
    info: Info[Context, None],
    content_id: Annotated[strawberry.ID, strawberry.argument(description="The item to find neighbours of.")],
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
) -> list[RecommendedItem]:
    """Items most similar to one item."""
    return await similar(info, content_id=str(content_id), count=count)


async def trending(
    info: Info[Context, None],
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this content type.")] = None,
    window_hours: Annotated[int, strawberry.argument(description="Window length in hours (1-8784).")] = 168,
) -> list[RecommendedItem]:
    """Most engaged-with items in the recent window."""
    items = await service.trending(
        info.context.state.recommender,
        count=count,
        content_type=enum_str(content_type),
        window_hours=window_hours,
    )
    return [RecommendedItem.from_domain(i) for i in items]
