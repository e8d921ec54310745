"""Content: listing, validated upserts that embed on write, status changes and search."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError, InvalidInput, NotFound
from app.ml.embeddings import MODEL_NAME, content_text, text_hash
from app.ml.serving import ServingConfig
from app.models import Content
from app.repositories.content import ContentFilter, ContentRepository
from app.repositories.links import LinkRepository
from app.repositories.model_versions import ModelVersionRepository
from app.services.validation import ContentWrite, check_count, validate

EmbedFn = Callable[[list[str]], Awaitable[np.ndarray]]
RRF_K = 60


@dataclass
class BatchOutcome:
    """Result of a batch write: how many were stored, duplicates, and errors by index."""

    accepted: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    """A page of a keyset-paginated listing."""

    items: list[Any]
    has_next: bool
    total: int


async def get_content(session: AsyncSession, *, content_id: str) -> Content:
    """The item, or NotFound."""
    item = await ContentRepository(session).get_by_id(content_id)
    if item is None:
        raise NotFound(f"content {content_id!r} not found", field="id")
    return item


async def list_contents(
    session: AsyncSession, *, filters: ContentFilter, first: int, after: str | None, max_page: int
) -> Page:
    """A page of items in id order with the filtered total."""
    check_count(first, name="first", maximum=max_page)
    repo = ContentRepository(session)
    rows = await repo.list_page(filters, first=first, after=after)
    return Page(items=rows[:first], has_next=len(rows) > first, total=await repo.count(filters))


def _row(write: ContentWrite) -> dict[str, Any]:
    row = write.model_dump()
    row["content_id"] = row.pop("id")
    row["published_at"] = None
    return row


async def upsert_content(session: AsyncSession, *, data: dict[str, Any], embed: EmbedFn | None) -> Content:
    """Validate, store and embed one item; the embedding is committed with it."""
    write = validate(ContentWrite, data)
    await _store(session, [write], embed)
    await session.commit()
    return await get_content(session, content_id=write.id)


async def upsert_contents(
    session: AsyncSession, *, inputs: Sequence[dict[str, Any]], embed: EmbedFn | None, max_batch: int
) -> BatchOutcome:
    """Store the valid items of a batch; invalid ones are reported by index."""
    check_count(len(inputs), name="inputs", maximum=max_batch)
    outcome = BatchOutcome()
    valid: dict[str, ContentWrite] = {}
    for index, data in enumerate(inputs):
        try:
            write = validate(ContentWrite, data, prefix=f"inputs[{index}]")
        except AppError as exc:
            outcome.errors.append((index, exc.message))
            continue
        if write.id in valid:
            outcome.duplicates += 1
        valid[write.id] = write
    await _store(session, list(valid.values()), embed)
    await session.commit()
    outcome.accepted = len(valid)
    return outcome


async def _store(session: AsyncSession, writes: list[ContentWrite], embed: EmbedFn | None) -> None:
    if not writes:
        return
    repo = ContentRepository(session)
    rows = [_row(w) for w in writes]
    for row in rows:
        if row["status"] == "published":
            row["published_at"] = func.now()
    await repo.upsert_many(rows)
    if embed is not None:
        await embed_items(
            session, items=[(w.id, content_text(w.title, w.description, w.tags)) for w in writes], embed=embed
        )


async def embed_items(session: AsyncSession, *, items: list[tuple[str, str]], embed: EmbedFn) -> int:
    """Embed the (id, text) items whose text changed since their last embedding; returns how many."""
    repo = ContentRepository(session)
    current = {c.content_id: c.embedding_hash for c in await repo.list_by_ids([i for i, _ in items])}
    stale = [(cid, txt, text_hash(txt)) for cid, txt in items if current.get(cid) != text_hash(txt)]
    if not stale:
        return 0
    vectors = await embed([txt for _, txt, _ in stale])
    await repo.set_embeddings([(cid, vec, MODEL_NAME, h) for (cid, _, h), vec in zip(stale, vectors, strict=True)])
    await link_to_neighbors(session, [cid for cid, _, _ in stale])
    return len(stale)


async def link_to_neighbors(session: AsyncSession, content_ids: list[str]) -> None:
    """Write newly embedded items' embedding neighbours into the active version's tables (both ways),
    so an item created after training is recommended next to similar items at once."""
    active = await ModelVersionRepository(session).get_active()
    if active is not None:
        k = ServingConfig.from_params(active.params).links.embedding_neighbors
        await LinkRepository(session).link_fresh(active.id, content_ids, k=k)


async def set_status(
    session: AsyncSession, cache_bump: Callable[[], Awaitable[None]] | None, *, content_id: str, status: str
) -> Content:
    """Change an item's status."""
    await get_content(session, content_id=content_id)
    await ContentRepository(session).set_status(content_id, status)
    await session.commit()
    if cache_bump is not None:
        await cache_bump()
    return await get_content(session, content_id=content_id)


async def search(
    session: AsyncSession,
    *,
    query: str,
    count: int,
    content_type: str | None,
    mode: str,
    embed: EmbedFn | None,
    max_count: int,
) -> list[tuple[Content, float]]:
    """Full-text, semantic, or hybrid (reciprocal-rank fusion of both) search over published items."""
    check_count(count, name="count", maximum=max_count)
    if not query.strip() or len(query) > 1000 or "\x00" in query:
        raise InvalidInput("query must be 1-1000 characters of text", field="query")
    repo = ContentRepository(session)
    text_hits = await repo.search_text(query, count=count * 2, content_type=content_type) if mode != "semantic" else []
    if mode == "text" or embed is None:
        return text_hits[:count]
    vector = (await embed([query]))[0]
    semantic = await repo.search_vector(vector, count=count * 2, content_type=content_type)
    if mode == "semantic":
        return semantic[:count]
    return reciprocal_rank_fusion([text_hits, semantic], count=count)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[Content, float]]], *, count: int
) -> list[tuple[Content, float]]:
    """Fuse rankings by RRF (k=60); scores rescaled so the best possible is 1."""
    scores: dict[str, float] = {}
    items: dict[str, Content] = {}
    for ranking in rankings:
        for rank, (item, _) in enumerate(ranking, start=1):
            scores[item.content_id] = scores.get(item.content_id, 0.0) + 1.0 / (RRF_K + rank)
            items[item.content_id] = item
    best = len(rankings) / (RRF_K + 1)
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:count]
    return [(items[cid], score / best) for cid, score in ordered]
