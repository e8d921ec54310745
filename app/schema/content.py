"""GraphQL types for content."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.types import Info

from app.context import Context
from app.models import Content as ContentModel
from app.repositories.pagination import encode_cursor
from app.resolvers.recommendations import similar
from app.schema.common import JSON, PageInfo
from app.schema.controls import ContentFilterInput
from app.schema.enums import ContentStatus, ContentType, SimilarityKind
from app.services.content import Page

if TYPE_CHECKING:
    from app.schema.recommendations import RecommendedItem


@strawberry.type(description="A content item: product, video, article, post, image or audio.")
class Content:
    id: strawberry.ID = strawberry.field(description="Content id (letters, digits, _ and -; 1-255).")
    title: str = strawberry.field(description="Title (1-500 characters).")
    description: str | None = strawberry.field(description="Description.")
    content_type: ContentType = strawberry.field(description="Kind of item.")
    status: ContentStatus = strawberry.field(description="Publication state.")
    category: str | None = strawberry.field(description="Category.")
    tags: list[str] = strawberry.field(description="Tags.")
    metadata: JSON = strawberry.field(description="Free-form JSON attributes.")
    created_at: datetime = strawberry.field(description="When the item was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the item last changed (UTC).")
    available_from: datetime | None = strawberry.field(
        description="Start of the availability window (UTC); null means open. Outside the window the item is "
        "never recommended, similar, trending or found."
    )
    expires_at: datetime | None = strawberry.field(description="End of the availability window (UTC); null means open.")

    @strawberry.field(description="Items most similar to this one (content embedding neighbours unless `by` says).")
    async def similar(
        self,
        info: Info[Context, None],
        count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
        by: Annotated[
            SimilarityKind, strawberry.argument(description="CONTENT (embedding) or COLLABORATIVE (ALS item factors).")
        ] = SimilarityKind.CONTENT,
        filter: Annotated[
            ContentFilterInput | None, strawberry.argument(description="Only items matching this content filter.")
        ] = None,
    ) -> list[Annotated[RecommendedItem, strawberry.lazy("app.schema.recommendations")]]:
        return await similar(info, content_id=str(self.id), count=count, by=by, filter=filter, title=self.title)

    @classmethod
    def from_model(cls, row: ContentModel) -> Content:
        """Build from an ORM row."""
        return cls(
            id=strawberry.ID(row.content_id),
            title=row.title,
            description=row.description,
            content_type=ContentType(row.content_type),
            status=ContentStatus(row.status),
            category=row.category,
            tags=list(row.tags),
            metadata=cast(JSON, row.metadata_),
            created_at=row.created_at,
            updated_at=row.updated_at,
            available_from=row.available_from,
            expires_at=row.expires_at,
        )


@strawberry.type(description="A content item with its cursor.")
class ContentEdge:
    cursor: str = strawberry.field(description="Opaque cursor of this item.")
    node: Content = strawberry.field(description="The item.")


@strawberry.type(description="A page of content items in id order.")
class ContentConnection:
    edges: list[ContentEdge] = strawberry.field(description="Items of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(description="Items matching the filters in all.")

    @classmethod
    def from_page(cls, page: Page) -> ContentConnection:
        """Build from a service page of ORM rows."""
        edges = [ContentEdge(cursor=encode_cursor(c.content_id), node=Content.from_model(c)) for c in page.items]
        info = PageInfo.of([e.cursor for e in edges], has_next=page.has_next, has_previous=page.has_previous)
        return cls(edges=edges, page_info=info, total_count=page.total)


@strawberry.type(description="A search result.")
class SearchHit:
    content: Content = strawberry.field(description="The matching item.")
    score: float = strawberry.field(description="Relevance (higher is better; HYBRID and SEMANTIC are in [0, 1]).")


@strawberry.input(description="A content item to create or replace.")
class ContentInput:
    id: strawberry.ID = strawberry.field(description="Content id: ^[a-zA-Z0-9_-]+$, 1-255 characters.")
    title: str = strawberry.field(description="Title, 1-500 characters.")
    content_type: ContentType = strawberry.field(description="Kind of item.")
    description: str | None = strawberry.field(default=None, description="Description (≤10,000 characters).")
    status: ContentStatus = strawberry.field(default=ContentStatus.PUBLISHED, description="Publication state.")
    category: str | None = strawberry.field(default=None, description="Category.")
    tags: list[str] | None = strawberry.field(default=None, description="Tags (≤100, each 1-100 characters).")
    metadata: JSON | None = strawberry.field(default=None, description="Free-form JSON (≤16 KiB).")
    available_from: datetime | None = strawberry.field(
        default=None, description="Not recommended or found before this time (UTC); null means open."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="Not recommended or found from this time on (UTC); null means open."
    )

    def to_dict(self) -> dict[str, object]:
        """Plain values for the service layer."""
        return {
            "id": str(self.id),
            "title": self.title,
            "description": self.description,
            "content_type": self.content_type.value,
            "status": self.status.value,
            "category": self.category,
            "tags": self.tags or [],
            "metadata": self.metadata if self.metadata is not None else {},
            "available_from": self.available_from,
            "expires_at": self.expires_at,
        }
