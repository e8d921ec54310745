"""Resolvers for recommendations, similar items and trending."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.common import JSON
from app.schema.controls import BoostInput, ContentFilterInput, RerankResult, boost_dicts, filter_dict
from app.schema.enums import ContentType, SimilarityKind, enum_str
from app.schema.online import ExperimentAssignment
from app.schema.recommendations import RecommendationResult, RecommendedItem, Strategy
from app.services import controls as controls_service
from app.services import recommendations as service
from app.services import serving
from app.services.controls import ControlArgs
from app.services.filters import parse_filter
from app.services.sessions import request_subject


async def recommend(
    info: Info[Context, None],
    *,
    user_id: str | None,
    count: int | None,
    content_type: ContentType | None,
    strategy: Strategy | None,
    exclude_ids: list[strawberry.ID] | None,
    context: JSON | None,
    session_id: str | None = None,
    after: str | None = None,
    controls: ControlArgs | None = None,
) -> RecommendationResult:
    """Shared by the root query and `User.recommendations`."""
    explicit = controls or ControlArgs()
    request = serving.ServeRequest(
        subject=request_subject(user_id, session_id),
        count=count,
        content_type=enum_str(content_type),
        strategy=service.Strategy(enum_str(strategy)) if strategy is not None else None,
        exclude_ids=tuple(str(i) for i in exclude_ids or ()),
        context=context,
        placement=explicit.placement,
        after=after,
        controls=explicit,
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


# Business controls (issue 14): the arguments `recommendations` shares with `rerank`, grouped here.
FilterArg = Annotated[
    ContentFilterInput | None,
    strawberry.argument(description="Only items matching this content filter (inside every candidate query)."),
]
BoostsArg = Annotated[
    list[BoostInput] | None,
    strawberry.argument(description="Multiply the scores of matching items (at most 20 boosts; factor 0-10)."),
]
DiversityArg = Annotated[
    float | None,
    strawberry.argument(description="MMR trade-off between relevance and variety, 0-1 (0 = off)."),
]
PlacementArg = Annotated[
    str | None,
    strawberry.argument(description="A placement whose settings are the defaults; explicit arguments win."),
]


def control_args(
    filter: ContentFilterInput | None, boosts: list[BoostInput] | None, diversity: float | None, placement: str | None
) -> ControlArgs:
    """The business-control arguments as the service takes them."""
    return ControlArgs(filter=filter_dict(filter), boosts=boost_dicts(boosts), diversity=diversity, placement=placement)


async def recommendations(
    info: Info[Context, None],
    user_id: Annotated[
        strawberry.ID | None, strawberry.argument(description="Who the recommendations are for (or give sessionId).")
    ] = None,
    count: Annotated[
        int | None, strawberry.argument(description="How many items (1-100; default the placement's, else 10).")
    ] = None,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this content type.")] = None,
    strategy: Annotated[
        Strategy | None, strawberry.argument(description="Retrieval strategy (default the placement's, else HYBRID).")
    ] = None,
    exclude_ids: Annotated[list[strawberry.ID] | None, strawberry.argument(description="Never return these.")] = None,
    context: Annotated[JSON | None, strawberry.argument(description="Request context (page, device…).")] = None,
    filter: FilterArg = None,
    boosts: BoostsArg = None,
    diversity: DiversityArg = None,
    placement: PlacementArg = None,
    session_id: Annotated[
        str | None,
        strawberry.argument(description="An anonymous visitor's session id, instead of userId (exactly one of them)."),
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
        controls=control_args(filter, boosts, diversity, placement),
        session_id=session_id,
        after=str(after) if after is not None else None,
    )


async def rerank(
    info: Info[Context, None],
    user_id: Annotated[strawberry.ID, strawberry.argument(description="Who the list is ordered for.")],
    content_ids: Annotated[
        list[strawberry.ID], strawberry.argument(description="The caller's items to order (1-500 ids).")
    ],
    placement: PlacementArg = None,
) -> RerankResult:
    """The caller's items ordered for one user by the same blend; unknown or ineligible ids are skipped."""
    recommender = info.context.state.recommender
    resolved = await controls_service.resolve(recommender.sessions, ControlArgs(placement=placement))
    items, skipped = await service.rerank(
        recommender,
        user_id=str(user_id),
        content_ids=[str(i) for i in content_ids],
        controls=resolved.controls,
        strategy=service.Strategy(resolved.strategy),
    )
    return RerankResult(
        items=[RecommendedItem.from_domain(i) for i in items], skipped_ids=[strawberry.ID(i) for i in skipped]
    )


async def similar(
    info: Info[Context, None],
    *,
    content_id: str,
    count: int,
    by: SimilarityKind = SimilarityKind.CONTENT,
    filter: ContentFilterInput | None = None,
    title: str | None = None,
) -> list[RecommendedItem]:
    """Shared by `similarContent` and `Content.similar` (which knows the item exists and its title)."""
    items = await service.similar_content(
        info.context.state.recommender,
        content_id=content_id,
        count=count,
        by=str(by.value),
        rules=parse_filter(filter_dict(filter)),
        title=title,
    )
    return [RecommendedItem.from_domain(i) for i in items]


async def similar_content(
    info: Info[Context, None],
    content_id: Annotated[strawberry.ID, strawberry.argument(description="The item to find neighbours of.")],
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
    by: Annotated[
        SimilarityKind, strawberry.argument(description="CONTENT (embedding) or COLLABORATIVE (ALS item factors).")
    ] = SimilarityKind.CONTENT,
    filter: FilterArg = None,
) -> list[RecommendedItem]:
    """Items most similar to one item."""
    return await similar(info, content_id=str(content_id), count=count, by=by, filter=filter)


async def trending(
    info: Info[Context, None],
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this content type.")] = None,
    window_hours: Annotated[int, strawberry.argument(description="Window length in hours (1-8784).")] = 168,
    filter: FilterArg = None,
) -> list[RecommendedItem]:
    """Most engaged-with items in the recent window."""
    items = await service.trending(
        info.context.state.recommender,
        count=count,
        content_type=enum_str(content_type),
        window_hours=window_hours,
        rules=parse_filter(filter_dict(filter)),
    )
    return [RecommendedItem.from_domain(i) for i in items]
