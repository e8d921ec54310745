"""Resolvers for content queries and mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.errors import Forbidden
from app.repositories.content import ContentFilter
from app.repositories.pagination import decode_cursor
from app.schema.common import BatchResult
from app.schema.content import Content, ContentConnection, ContentInput, SearchHit
from app.schema.controls import ContentFilterInput, filter_dict
from app.schema.enums import ContentStatus, ContentType, SearchMode, enum_str
from app.services import content as service
from app.services.filters import parse_filter


async def content(
    info: Info[Context, None], id: Annotated[strawberry.ID, strawberry.argument(description="Content id.")]
) -> Content | None:
    """One item, or null."""
    row = await info.context.loaders.content_by_id.load(str(id))
    if row is None or (row.status != "published" and await info.context.published_only()):
        return None
    return Content.from_model(row)


async def contents(
    info: Info[Context, None],
    first: Annotated[int, strawberry.argument(description="Page size (1-100).")] = 20,
    after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this type.")] = None,
    status: Annotated[ContentStatus | None, strawberry.argument(description="Only this status.")] = None,
    category: Annotated[str | None, strawberry.argument(description="Only this category.")] = None,
    tag: Annotated[str | None, strawberry.argument(description="Only items with this tag.")] = None,
    filter: Annotated[
        ContentFilterInput | None, strawberry.argument(description="Only items matching this content filter.")
    ] = None,
    available: Annotated[
        bool | None,
        strawberry.argument(description="true: only items inside their availability window now; false: only outside."),
    ] = None,
) -> ContentConnection:
    """A page of items in id order."""
    if await info.context.published_only():
        if status not in (None, ContentStatus.PUBLISHED):
            raise Forbidden("user tokens see published content only", field="status")
        status = ContentStatus.PUBLISHED
    filters = ContentFilter(
        content_type=enum_str(content_type),
        status=enum_str(status),
        category=category,
        tag=tag,
        rules=parse_filter(filter_dict(filter)),
        available=available,
    )
    cursor = decode_cursor(after, 1)[0] if after is not None else None
    async with info.context.read_session() as session:
        page = await service.list_contents(
            session, filters=filters, first=first, after=cursor, max_page=info.context.settings.max_page_size
        )
    return ContentConnection.from_page(page)


async def search_content(
    info: Info[Context, None],
    query: Annotated[str, strawberry.argument(description="What to look for.")],
    count: Annotated[int, strawberry.argument(description="How many results (1-100).")] = 10,
    content_type: Annotated[ContentType | None, strawberry.argument(description="Only this type.")] = None,
    mode: Annotated[SearchMode, strawberry.argument(description="TEXT, SEMANTIC or HYBRID.")] = SearchMode.HYBRID,
    filter: Annotated[
        ContentFilterInput | None, strawberry.argument(description="Only items matching this content filter.")
    ] = None,
) -> list[SearchHit]:
    """Published items inside their availability window matching a query."""
    ctx = info.context
    rules = parse_filter(filter_dict(filter))
    async with ctx.read_session() as session:
        hits = await service.search(
            session,
            query=query,
            count=count,
            content_type=enum_str(content_type),
            mode=str(mode.value),
            embed=ctx.state.recommender.embed,
            max_count=ctx.settings.max_page_size,
            rules=rules,
        )
    return [SearchHit(content=Content.from_model(row), score=score) for row, score in hits]


async def upsert_content(
    info: Info[Context, None], input: Annotated[ContentInput, strawberry.argument(description="The item.")]
) -> Content:
    """Create or replace an item; it is embedded before the mutation returns."""
    ctx = info.context
    async with ctx.session() as session:
        row = await service.upsert_content(
            session,
            data=input.to_dict(),
            embed=ctx.state.recommender.embed,
            cache_bump=ctx.state.recommender.invalidate_all,
        )
    return Content.from_model(row)


async def upsert_contents(
    info: Info[Context, None],
    inputs: Annotated[list[ContentInput], strawberry.argument(description="The items (at most the batch limit).")],
) -> BatchResult:
    """Create or replace many items; invalid ones are reported by index, valid ones stored."""
    ctx = info.context
    async with ctx.session() as session:
        outcome = await service.upsert_contents(
            session,
            inputs=[i.to_dict() for i in inputs],
            embed=ctx.state.recommender.embed,
            max_batch=ctx.settings.max_batch_size,
            cache_bump=ctx.state.recommender.invalidate_all,
        )
    return BatchResult.from_outcome(outcome)


async def set_content_status(
    info: Info[Context, None],
    id: Annotated[strawberry.ID, strawberry.argument(description="Content id.")],
    status: Annotated[ContentStatus, strawberry.argument(description="The new status.")],
) -> Content:
    """Publish, archive or delete an item (cached results are invalidated)."""
    ctx = info.context
    async with ctx.session() as session:
        row = await service.set_status(
            session, ctx.state.recommender.invalidate_all, content_id=str(id), status=str(status.value)
        )
    return Content.from_model(row)
