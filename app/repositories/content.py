"""SQL for content: pages, upserts, full-text and vector search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, case, func, literal, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Content
from app.repositories.arrays import among
from app.repositories.filters import ContentRules, eligible, matches

# ts_rank weights for {D, C, B, A}: title 10, description 5, tags 1 (the LLD's), scaled to [0, 1].
RANK_WEIGHTS = "'{0.0, 0.1, 0.5, 1.0}'"


@dataclass(frozen=True)
class ContentFilter:
    """Filters of a content listing."""

    content_type: str | None = None
    status: str | None = None
    category: str | None = None
    tag: str | None = None
    rules: ContentRules | None = None
    available: bool | None = None  # None: any; True: inside the availability window now; False: outside


class ContentRepository:
    """Reads and writes `content`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, content_id: str) -> Content | None:
        """The item, or None."""
        return await self.session.get(Content, content_id)

    async def list_by_ids(self, content_ids: Sequence[str]) -> list[Content]:
        """The items among `content_ids` that exist."""
        rows = await self.session.scalars(select(Content).where(among(Content.content_id, content_ids)))
        return list(rows)

    async def existing_ids(self, content_ids: Sequence[str]) -> set[str]:
        """Which of `content_ids` exist."""
        rows = await self.session.scalars(select(Content.content_id).where(among(Content.content_id, content_ids)))
        return set(rows)

    @staticmethod
    def _filtered(stmt: Select[Any], f: ContentFilter) -> Select[Any]:
        if f.content_type:
            stmt = stmt.where(Content.content_type == f.content_type)
        if f.status:
            stmt = stmt.where(Content.status == f.status)
        if f.category:
            stmt = stmt.where(Content.category == f.category)
        if f.tag:
            stmt = stmt.where(Content.tags.contains([f.tag]))
        return stmt.where(*eligible(f.rules, published=False, available=f.available))

    async def list_page(self, f: ContentFilter, *, first: int, after: str | None) -> list[Content]:
        """Up to `first` + 1 items after the id `after`, in id order (keyset pagination)."""
        stmt = self._filtered(select(Content), f).order_by(Content.content_id).limit(first + 1)
        if after is not None:
            stmt = stmt.where(Content.content_id > after)
        return list(await self.session.scalars(stmt))

    async def count(self, f: ContentFilter) -> int:
        """How many items match the filter."""
        return int(await self.session.scalar(self._filtered(select(func.count()).select_from(Content), f)) or 0)

    async def upsert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace items; an unchanged text keeps its embedding."""
        stmt = insert(Content).values(list(rows))
        excluded = stmt.excluded
        columns = (
            "title",
            "description",
            "content_type",
            "status",
            "category",
            "tags",
            "metadata",
            "available_from",
            "expires_at",
        )
        values: dict[str, Any] = {c: excluded[c] for c in columns}
        values["published_at"] = func.coalesce(Content.published_at, excluded.published_at)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[Content.content_id], set_=values))

    async def set_status(self, content_id: str, status: str) -> None:
        """Change an item's status (published_at is set on first publication)."""
        values: dict[str, Any] = {"status": status}
        if status == "published":
            values["published_at"] = func.coalesce(Content.published_at, func.now())
        await self.session.execute(update(Content).where(Content.content_id == content_id).values(**values))

    async def set_embeddings(self, rows: Sequence[tuple[str, np.ndarray, str, str]]) -> None:
        """Store (content_id, vector, model name, text hash) rows."""
        for content_id, vector, model, text_hash in rows:
            await self.session.execute(
                update(Content)
                .where(Content.content_id == content_id)
                .values(embedding=vector, embedding_model=model, embedding_hash=text_hash)
            )

    async def list_for_embedding(self, *, limit: int | None = None) -> list[Content]:
        """Items with their text and current hash, to decide which need (re-)embedding."""
        stmt = select(Content).order_by(Content.content_id)
        if limit:
            stmt = stmt.limit(limit)
        return list(await self.session.scalars(stmt))

    async def any_window(self, content_ids: Sequence[str]) -> bool:
        """Whether any of these items has an availability bound set."""
        window = or_(Content.available_from.is_not(None), Content.expires_at.is_not(None))
        stmt = select(Content.content_id).where(among(Content.content_id, content_ids), window).limit(1)
        return await self.session.scalar(stmt) is not None

    async def eligible_ids(self, content_ids: Sequence[str], rules: ContentRules | None) -> set[str]:
        """Which of `content_ids` are published, available now and match the rules."""
        stmt = select(Content.content_id).where(*eligible(rules, only=content_ids))
        return set(await self.session.scalars(stmt))

    async def boost_factors(
        self, content_ids: Sequence[str], boosts: Sequence[tuple[ContentRules, float]]
    ) -> dict[str, float]:
        """Per item, the product of the factors of the boosts whose rules it matches (items matching none: absent)."""
        if not boosts or not content_ids:
            return {}
        columns = [case((matches(rules), literal(factor)), else_=literal(1.0)) for rules, factor in boosts]
        stmt = select(Content.content_id, *columns).where(among(Content.content_id, content_ids))
        out: dict[str, float] = {}
        for row in await self.session.execute(stmt):
            product = float(np.prod([float(v) for v in row[1:]]))
            if product != 1.0:
                out[row[0]] = product
        return out

    async def search_text(
        self, query: str, *, count: int, content_type: str | None, rules: ContentRules | None = None
    ) -> list[tuple[Content, float]]:
        """Published, available items matching the rules, ranked by weighted full-text relevance."""
        tsq = func.websearch_to_tsquery("english", query)
        rank = func.ts_rank(literal_column(RANK_WEIGHTS), Content.search_vector, tsq).label("rank")
        stmt = (
            select(Content, rank)
            .where(Content.search_vector.op("@@")(tsq), *eligible(rules, content_type=content_type))
            .order_by(rank.desc(), Content.content_id)
            .limit(count)
        )
        return [(row[0], float(row[1])) for row in await self.session.execute(stmt)]

    async def search_vector(
        self,
        vector: np.ndarray,
        *,
        count: int,
        content_type: str | None,
        exclude: Sequence[str] = (),
        rules: ContentRules | None = None,
    ) -> list[tuple[Content, float]]:
        """Published, available items matching the rules, nearest to `vector` by cosine similarity (HNSW;
        exact over the matching rows when the rules are narrow: `ContentRules.narrow`)."""
        raw = Content.embedding.cosine_distance(vector)
        distance = raw.label("distance")
        order = raw + 0 if rules is not None and rules.narrow else distance
        stmt = (
            select(Content, distance)
            .where(Content.embedding.is_not(None), *eligible(rules, content_type=content_type, exclude=exclude))
            .order_by(order)
            .limit(count)
        )
        return [(row[0], 1.0 - float(row[1])) for row in await self.session.execute(stmt)]
