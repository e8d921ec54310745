"""Resolvers for recommendations, similar items and trending."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.common import JSON
from app.schema.enums import ContentType, SimilarityKind, enum_str
from app.schema.recommendations import RecommendationResult, RecommendedItem, Strategy
from app.services import recommendations as service


async def recommend(
    info: Info[Context, None],
    *,
    user_id: str,
    count: int,
    content_type: ContentType | None,
    strategy: Strategy | None,
    exclude_ids: list[strawberry.ID] | None,
    context: JSON | None,
) -> RecommendationResult:
    """Shared by the root query and `User.recommendations`."""
    request = service.RecRequest(
        user_id=user_id,
        count=count,
        content_type=enum_str(content_type),
        strategy=service.Strategy(str((strategy or Strategy.HYBRID).value)),
        exclude_ids=tuple(str(i) for i in exclude_ids or ()),
        context=context,
    )
    result = await service.recommend(info.context.state.recommender, request, request_id=info.context.request_id)
    return RecommendationResult.from_domain(result)


async def recommendations(
    info: Info[Context, None],
    user_id: Annotated[strawberry.ID, strawberry.argument(description="Who the recommendations are for.")],
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this content type.")] = None,
    strategy: Annotated[Strategy, strawberry.argument(description="Retrieval strategy.")] = Strategy.HYBRID,
    exclude_ids: Annotated[list[strawberry.ID] | None, strawberry.argument(description="Never return these.")] = None,
    context: Annotated[JSON | None, strawberry.argument(description="Request context (page, device…).")] = None,
) -> RecommendationResult:
    """Personalized, explained recommendations for a user."""
    return await recommend(
        info,
        user_id=str(user_id),
        count=count,
        content_type=content_type,
        strategy=strategy,
        exclude_ids=exclude_ids,
        context=context,
    )


async def similar(
    info: Info[Context, None], *, content_id: str, count: int, by: SimilarityKind = SimilarityKind.CONTENT
) -> list[RecommendedItem]:
    """Shared by `similarContent` and `Content.similar`."""
    engine = info.context.state.recommender
    items = await service.similar_content(engine, content_id=content_id, count=count, by=str(by.value))
    return [RecommendedItem.from_domain(i) for i in items]


async def similar_content(
    info: Info[Context, None],
    content_id: Annotated[strawberry.ID, strawberry.argument(description="The item to find neighbours of.")],
    count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
    by: Annotated[
        SimilarityKind, strawberry.argument(description="CONTENT (embedding) or COLLABORATIVE (ALS item factors).")
    ] = SimilarityKind.CONTENT,
) -> list[RecommendedItem]:
    """Items most similar to one item."""
    return await similar(info, content_id=str(content_id), count=count, by=by)


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
