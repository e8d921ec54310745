"""GraphQL types for business controls: content filters, boosts, placements and re-ranking."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry

from app.models import Placement as PlacementModel
from app.schema.common import JSON
from app.schema.enums import ContentType
from app.schema.recommendations import RecommendedItem, Strategy


@strawberry.input(description="Which content qualifies; every given part must hold (omitted parts are open).")
class ContentFilterInput:
    content_types: list[ContentType] | None = strawberry.field(default=None, description="Any of these types.")
    categories: list[str] | None = strawberry.field(default=None, description="Any of these categories (≤100).")
    tags_any: list[str] | None = strawberry.field(default=None, description="At least one of these tags (≤100).")
    tags_all: list[str] | None = strawberry.field(default=None, description="All of these tags (≤100).")
    exclude_tags: list[str] | None = strawberry.field(default=None, description="None of these tags (≤100).")
    metadata: JSON | None = strawberry.field(
        default=None, description='JSON containment: {"inStock": true} matches metadata that contains it.'
    )
    published_after: datetime | None = strawberry.field(default=None, description="Published at or after this time.")
    published_before: datetime | None = strawberry.field(default=None, description="Published before this time.")

    def to_dict(self) -> dict[str, Any]:
        """The given parts, camelCase, for the service layer."""
        data: dict[str, Any] = {
            "contentTypes": [t.value for t in self.content_types] if self.content_types is not None else None,
            "categories": self.categories,
            "tagsAny": self.tags_any,
            "tagsAll": self.tags_all,
            "excludeTags": self.exclude_tags,
            "metadata": self.metadata,
            "publishedAfter": self.published_after,
            "publishedBefore": self.published_before,
        }
        return {k: v for k, v in data.items() if v is not None}


@strawberry.input(description="Multiply the blended score of matching items by a factor (< 1 buries them).")
class BoostInput:
    filter: ContentFilterInput = strawberry.field(description="Which items the boost applies to.")
    factor: float = strawberry.field(description="Score multiplier, 0 < factor ≤ 10.")

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the service layer."""
        return {"filter": self.filter.to_dict(), "factor": self.factor}


def filter_dict(value: ContentFilterInput | None) -> dict[str, Any] | None:
    """A filter argument as the service layer takes it."""
    return None if value is None else value.to_dict()


def boost_dicts(value: list[BoostInput] | None) -> list[dict[str, Any]] | None:
    """A boosts argument as the service layer takes it."""
    return None if value is None else [b.to_dict() for b in value]


@strawberry.input(description="Named recommendation defaults for a page or slot; explicit arguments win.")
class PlacementInput:
    name: str = strawberry.field(description="Placement name: letters, digits, _ . : -, 1-100 characters.")
    strategy: Strategy | None = strawberry.field(default=None, description="Default strategy.")
    count: int | None = strawberry.field(default=None, description="Default number of items (1-100).")
    filter: ContentFilterInput | None = strawberry.field(default=None, description="Default content filter.")
    boosts: list[BoostInput] | None = strawberry.field(default=None, description="Default boosts (≤20).")
    diversity: float | None = strawberry.field(default=None, description="Default MMR trade-off, 0-1 (0 = off).")
    description: str | None = strawberry.field(default=None, description="What the placement is for.")

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the service layer."""
        return {
            "name": self.name,
            "strategy": None if self.strategy is None else str(self.strategy.value),
            "count": self.count,
            "filter": filter_dict(self.filter),
            "boosts": boost_dicts(self.boosts),
            "diversity": self.diversity,
            "description": self.description,
        }


@strawberry.type(description="A placement: recommendation defaults applied by `recommendations(placement: …)`.")
class Placement:
    name: str = strawberry.field(description="Placement name.")
    description: str | None = strawberry.field(description="What the placement is for.")
    strategy: Strategy | None = strawberry.field(description="Default strategy (null: HYBRID).")
    count: int | None = strawberry.field(description="Default number of items (null: 10).")
    filter: JSON | None = strawberry.field(description="Default content filter, as ContentFilterInput JSON.")
    boosts: JSON = strawberry.field(description="Default boosts, as a list of BoostInput JSON.")
    diversity: float | None = strawberry.field(description="Default MMR trade-off (null: off).")
    version: int = strawberry.field(description="Grows on every change; cached results are keyed by it.")
    updated_at: datetime = strawberry.field(description="When the placement last changed (UTC).")

    @classmethod
    def from_model(cls, row: PlacementModel) -> Placement:
        """Build from an ORM row."""
        return cls(
            name=row.name,
            description=row.description,
            strategy=Strategy(row.strategy) if row.strategy else None,
            count=row.count,
            filter=cast(JSON, row.filter),
            boosts=cast(JSON, row.boosts),
            diversity=row.diversity,
            version=row.version,
            updated_at=row.updated_at,
        )


@strawberry.type(description="A caller's list re-ordered for one user.")
class RerankResult:
    items: list[RecommendedItem] = strawberry.field(
        description="The eligible given items (published, available, matching the placement's filter), best first."
    )
    skipped_ids: list[strawberry.ID] = strawberry.field(description="Given ids that are unknown or ineligible.")
