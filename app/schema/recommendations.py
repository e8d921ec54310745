"""GraphQL types for recommendations, explanations and model versions."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.types import Info

from app.context import Context
from app.models import ModelVersion as ModelVersionModel
from app.schema.common import JSON
from app.schema.enums import ModelKind, ModelVersionStatus
from app.services import explain
from app.services import recommendations as rec

if TYPE_CHECKING:
    from app.schema.content import Content
    from app.schema.online import ExperimentAssignment


@strawberry.enum(description="Which candidate sources a recommendation request blends.")
class Strategy(Enum):
    HYBRID = strawberry.enum_value("hybrid", description="All sources, blended with tuned weights.")
    COLLABORATIVE = strawberry.enum_value(
        "collaborative", description="ALS: the user's vector and item-factor neighbours of recent items."
    )
    CONTENT_BASED = strawberry.enum_value(
        "content_based", description="Embeddings: the user's content profile and neighbours of recent items."
    )
    POPULAR = strawberry.enum_value("popular", description="Most engaged-with items overall.")
    TRENDING = strawberry.enum_value("trending", description="Most engaged-with items in the recent window.")


@strawberry.enum(description="Which source contributed to a recommendation.")
class ReasonKind(Enum):
    COLLABORATIVE = strawberry.enum_value("collaborative", description="People with similar taste engaged with it.")
    CO_ENGAGEMENT = strawberry.enum_value(
        "co_engagement", description="People who engaged with the anchor item also engaged with this one."
    )
    SEQUENTIAL = strawberry.enum_value(
        "sequential", description="People who engaged with the anchor item often engaged with this one next."
    )
    CONTENT_SIMILARITY = strawberry.enum_value(
        "content_similarity", description="Its content is similar to an anchor item or to the user's profile."
    )
    POPULARITY = strawberry.enum_value("popularity", description="Popular overall.")
    TRENDING = strawberry.enum_value("trending", description="Popular in the recent window.")
    RECENCY = strawberry.enum_value("recency", description="Newly published.")
    COLD_START = strawberry.enum_value("cold_start", description="The user has no history yet: popular picks.")
    PERSONALIZATION_OFF = strawberry.enum_value(
        "personalization_off", description="The user turned personalization off: non-personalized picks."
    )
    BOOST = strawberry.enum_value("boost", description="A boost of the request or placement multiplied the score.")


@strawberry.type(description="One source's share of a recommended item's score.")
class Reason:
    kind: ReasonKind = strawberry.field(description="The contributing source.")
    anchor_content_id: strawberry.ID | None = strawberry.field(
        description="The user's item this one is similar to, when the source is anchored."
    )
    weight: float = strawberry.field(
        description="This source's contribution to the score (BOOST: the share the boost added; negative buries)."
    )
    factor: float | None = strawberry.field(description="BOOST only: the factor that multiplied the score.")

    @classmethod
    def from_domain(cls, reason: explain.Reason) -> Reason:
        """Build from a service reason."""
        anchor = strawberry.ID(reason.anchor_content_id) if reason.anchor_content_id else None
        return cls(
            kind=ReasonKind(reason.kind.value), anchor_content_id=anchor, weight=reason.weight, factor=reason.factor
        )


@strawberry.type(description="A recommended content item with its score, rank and explanation.")
class RecommendedItem:
    content_id: strawberry.ID = strawberry.field(description="The recommended item's id.")
    score: float = strawberry.field(description="Blended score in [0, 1]; descending down the list.")
    rank: int = strawberry.field(description="Position, 1..n.")
    explanation: str = strawberry.field(description='A human sentence, e.g. "Because you watched Toy Story (1995)".')
    reasons: list[Reason] = strawberry.field(description="Typed reasons, strongest first.")

    @strawberry.field(description="The item (batched through a DataLoader).")
    async def content(
        self, info: Info[Context, None]
    ) -> Annotated[Content, strawberry.lazy("app.schema.content")] | None:
        return await info.context.loaders.content_node.load(str(self.content_id))

    @classmethod
    def from_domain(cls, item: rec.RecItem) -> RecommendedItem:
        """Build from a service item."""
        return cls(
            content_id=strawberry.ID(item.content_id),
            score=item.score,
            rank=item.rank,
            explanation=item.explanation,
            reasons=[Reason.from_domain(r) for r in item.reasons],
        )


@strawberry.type(description="A recommendation response.")
class RecommendationResult:
    user_id: strawberry.ID | None = strawberry.field(
        description="Who the items are for; null for an anonymous session."
    )
    items: list[RecommendedItem] = strawberry.field(description="The items, best first.")
    request_id: str = strawberry.field(description="Id of this request (also in the logs).")
    model_version: int | None = strawberry.field(description="Active model version used; null before any training.")
    response_time_ms: float = strawberry.field(description="Server-side time to answer, in milliseconds.")
    timestamp: datetime = strawberry.field(description="When the result was computed (UTC).")
    cached: bool = strawberry.field(description="Whether the result came from the cache.")
    strategy: Strategy = strawberry.field(description="The strategy used.")
    # the online loop
    session_id: str | None = strawberry.field(
        default=None, description="The anonymous session the items are for; null for a user."
    )
    experiment: Annotated[ExperimentAssignment, strawberry.lazy("app.schema.online")] | None = strawberry.field(
        default=None, description="The experiment and arm this list was served under, if any."
    )

    @classmethod
    def from_domain(cls, result: rec.RecResult) -> RecommendationResult:
        """Build from a service result."""
        return cls(
            user_id=strawberry.ID(result.user_id),
            items=[RecommendedItem.from_domain(i) for i in result.items],
            request_id=result.request_id,
            model_version=result.model_version,
            response_time_ms=result.response_time_ms,
            timestamp=result.timestamp,
            cached=result.cached,
            strategy=Strategy(result.strategy.value),
        )


@strawberry.type(description="A trained model version from the registry.")
class ModelVersion:
    id: int = strawberry.field(description="Version id.")
    kind: str = strawberry.field(
        description="Model family (als).", deprecation_reason="Use `modelKind`, the same value as an enum."
    )
    params: JSON = strawberry.field(description="Hyper-parameters.")
    training_stats: JSON = strawberry.field(description="Training data statistics and timings.")
    metrics: JSON = strawberry.field(description="Offline metrics from the promotion gate.")
    trained_at: datetime = strawberry.field(description="When it was trained (UTC).")
    status: str = strawberry.field(
        description="candidate, active or retired.",
        deprecation_reason="Use `versionStatus`, the same value as an enum.",
    )

    @strawberry.field(description="Lifecycle of this version.")
    def version_status(self) -> ModelVersionStatus:
        return ModelVersionStatus(self.status)

    @strawberry.field(description="Model family of this version.")
    def model_kind(self) -> ModelKind:
        return ModelKind(self.kind)

    @classmethod
    def from_model(cls, row: ModelVersionModel) -> ModelVersion:
        """Build from an ORM row."""
        return cls(
            id=row.id,
            kind=row.kind,
            params=cast(JSON, row.params),
            training_stats=cast(JSON, row.training_stats),
            metrics=cast(JSON, row.metrics),
            trained_at=row.trained_at,
            status=row.status,
        )
